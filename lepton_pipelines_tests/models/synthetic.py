"""Small synthetic frames shaped like the governed tables, with a known signal planted in them.

Transactions: fraud is concentrated in one merchant category, the web channel and high amounts,
so a working classifier must beat chance clearly, and a shuffled label must not. Telemetry:
readings around a stable operating point with a few injected faults flagged in
``is_injected_anomaly`` so the anomaly model can be scored against ground truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lepton_pipelines.lake.store import Lake

CURRENCIES = ["USD", "EUR", "GBP"]
CATEGORIES = ["grocery", "travel", "electronics", "fuel"]
CHANNELS = ["web", "mobile", "branch", "atm"]
COUNTRIES = ["US", "DE", "GB"]


def transactions(day: str, rows: int, seed: int, signal: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    category = rng.choice(CATEGORIES, rows)
    channel = rng.choice(CHANNELS, rows)
    amount = np.round(rng.lognormal(3.5, 1.0, rows), 2)
    if signal:
        risk = -4.0 + 2.5 * (category == "electronics") + 1.5 * (channel == "web") + 1.0 * (amount > 80)
        is_fraud = rng.random(rows) < 1 / (1 + np.exp(-risk))
    else:
        is_fraud = rng.random(rows) < 0.15
    start = pd.Timestamp(day, tz="UTC")
    return pd.DataFrame(
        {
            "txn_id": [f"T{day.replace('-', '')}-{i:08d}" for i in range(rows)],
            "customer_id": [f"C{i % 97:05d}" for i in range(rows)],
            "event_ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
            "amount": amount,
            "currency": rng.choice(CURRENCIES, rows),
            "merchant_category": category,
            "channel": channel,
            "country": rng.choice(COUNTRIES, rows),
            "status": rng.choice(["approved", "declined", "reversed"], rows, p=[0.9, 0.07, 0.03]),
            "is_fraud": pd.array(is_fraud, dtype="boolean"),
        }
    )


def telemetry(day: str, rows: int, seed: int, anomaly_share: float = 0.01, labelled: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(day, tz="UTC")
    frame = pd.DataFrame(
        {
            "device_id": [f"dev-{i % 8:03d}" for i in range(rows)],
            "ts": start + pd.to_timedelta(np.arange(rows) * 30, unit="s"),
            "seq": np.arange(rows, dtype="int64"),
            "temperature": rng.normal(21.0, 1.0, rows),
            "humidity": rng.normal(45.0, 3.0, rows),
            "vibration": np.abs(rng.normal(0.2, 0.05, rows)),
            "battery": rng.uniform(3.6, 4.1, rows),
        }
    )
    faults = rng.random(rows) < anomaly_share
    # Scattered fault magnitudes: faults are rare and unlike each other, not a second cluster.
    frame.loc[faults, "temperature"] += rng.choice([-1.0, 1.0], faults.sum()) * rng.uniform(10.0, 30.0, faults.sum())
    frame.loc[faults, "vibration"] += rng.uniform(1.0, 3.0, faults.sum())
    if labelled:
        frame["is_injected_anomaly"] = faults
    return frame


def write_governed(lake: Lake, source: str, frames: dict[str, pd.DataFrame]) -> None:
    """Publish frames as governed partitions at ``<lake>/governed/<source>/date=<day>/data.parquet``."""
    for day, frame in frames.items():
        lake.write_table("governed", source, day, frame)
