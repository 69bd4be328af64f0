"""Deterministic, realistically messy sample data for the finance case (seeded; same input → same bytes).

Each generator writes landing files the way a business system would export them, with the usual
faults injected on purpose — duplicates (later versions of a record), nulls, outliers, unparsable
values, values outside the allowed set, late-arriving rows and a malformed line — and returns a
manifest of exactly what it injected, so tests can compute the expected pipeline result on their own.

Fault rows are drawn from disjoint sets of record indices, so each expected count is exact.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lepton_pipelines.lake.store import Lake

SIZES = {"tiny": 400, "small": 10_000, "medium": 100_000, "large": 1_000_000}
CURRENCIES = np.array(["USD", "EUR", "GBP", "CNY", "JPY"])
CHANNELS = np.array(["web", "mobile", "branch", "atm"])
MCC = np.array(["grocery", "travel", "electronics", "restaurants", "utilities", "fuel", "health"])
SEGMENTS = np.array(["retail", "sme", "corporate"])
RISK = np.array(["low", "medium", "high"])
COUNTRIES = np.array(["US", "DE", "GB", "CN", "JP", "FR", "SG"])
SYMBOLS = np.array([f"SYM{i:02d}" for i in range(20)])


@dataclass
class SampleManifest:
    """What a generator wrote and injected. ``expected_*`` are what a correct pipeline must produce."""

    source: str
    partition: str | None
    files: list[str] = field(default_factory=list)
    landed_records: int = 0  # data records written (malformed lines included)
    malformed_lines: int = 0  # lines no parser can turn into a record → raw-stage quarantine
    unparsable: dict[str, int] = field(
        default_factory=dict
    )  # by column: values that do not parse → raw-stage quarantine
    duplicates: int = 0  # extra versions of an existing key → removed by dedup
    dropped: dict[str, int] = field(default_factory=dict)  # by cause → clean-stage quarantine
    quarantined: dict[str, int] = field(default_factory=dict)  # by failed expectation → governed-stage quarantine
    late_arriving: int = 0
    imputed: dict[str, int] = field(default_factory=dict)
    expected_governed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _rng(source: str, partition: str | None, seed: int) -> np.random.Generator:
    # The seed mixes source and partition so partitions differ but every run of one partition is identical.
    key = f"{source}:{partition}:{seed}".encode()
    return np.random.default_rng(int.from_bytes(key[:8].ljust(8, b"\0"), "little") ^ seed ^ sum(key))


def _disjoint(rng: np.random.Generator, n: int, counts: list[int]) -> list[np.ndarray]:
    picks = rng.permutation(n)
    out, start = [], 0
    for c in counts:
        out.append(np.sort(picks[start : start + c]))
        start += c
    return out


def _day_start(partition: str) -> datetime:
    return datetime.combine(date.fromisoformat(partition), datetime.min.time(), tzinfo=UTC)


def _write(lake: Lake, relative: str, data: bytes) -> str:
    path = lake.path("landing", relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.fs.open(path.path, "wb") as handle:
        handle.write(data)
    return f"landing/{relative}"


def generate_transactions(lake: Lake, partition: str, rows: int, seed: int = 7) -> SampleManifest:
    """Card transactions as a core-banking CSV export in two files, plus a late file."""
    rng = _rng("transactions", partition, seed)
    n = rows
    m = SampleManifest("transactions", partition)
    pct = lambda p: max(1, int(n * p))  # noqa: E731 — tiny local helper for fault rates
    null_amt, bad_amt, neg_amt, huge_amt, bad_ccy, dup_src, late = _disjoint(
        rng, n, [pct(0.005), pct(0.003), pct(0.002), pct(0.002), pct(0.004), pct(0.01), pct(0.02)]
    )
    seconds = np.sort(rng.integers(0, 86_400, n))
    ts = np.datetime64(partition, "s") + seconds.astype("timedelta64[s]")
    ts[late] = ts[late] - np.timedelta64(1, "D")  # event happened yesterday, arrived today
    amount_value = np.round(rng.lognormal(3.5, 1.1, n), 2)
    amount = np.array([f"{a:.2f}" for a in amount_value], dtype=object)
    amount[null_amt] = ""
    amount[bad_amt] = rng.choice(np.array(["12,50", "n/a", "1.2.3", "$40"]), len(bad_amt))
    amount[neg_amt] = "-25.00"
    amount[huge_amt] = "99999999.00"
    currency = rng.choice(CURRENCIES, n).astype(object)
    messy = rng.random(n) < 0.05
    currency[messy] = [f" {c.lower()}" for c in currency[messy]]  # " usd" → trim + upper
    currency[bad_ccy] = "XXX"
    status = np.where(rng.random(n) < 0.03, "declined", "approved").astype(object)
    mcc = rng.choice(MCC, n)
    channel = rng.choice(CHANNELS, n)
    country = rng.choice(COUNTRIES, n)
    # Confirmed fraud follows a learnable pattern (online electronics/travel, large amounts, some
    # corridors) so the transaction_risk model has a real signal to find, as in production data.
    logit = (
        -5.2
        + 1.6 * np.isin(mcc, ["electronics", "travel"])
        + 1.2 * (channel == "web")
        + 1.4 * (amount_value > 120)
        + 0.8 * np.isin(country, ["CN", "SG"])
    )
    fraud = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    df = pd.DataFrame(
        {
            "txn_id": [f"T{partition.replace('-', '')}-{i:08d}" for i in range(n)],
            "customer_id": [f"C{c:05d}" for c in rng.integers(0, max(50, n // 20), n)],
            "event_ts": pd.DatetimeIndex(ts).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": amount,
            "currency": currency,
            "merchant_category": np.where(rng.random(n) < 0.01, "", mcc),
            "channel": channel,
            "country": country,
            "status": status,
            "is_fraud": np.where(fraud, "true", "false"),
        }
    )
    # Later versions of some clean transactions (e.g. reversed): dedup must keep these.
    dups = df.iloc[dup_src].copy()
    dups["event_ts"] = (pd.to_datetime(df["event_ts"].iloc[dup_src]) + pd.Timedelta(minutes=7)).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    dups["status"] = "reversed"
    main, late_rows = df.drop(index=late), df.iloc[late]
    half = len(main) // 2
    parts = [main.iloc[:half], pd.concat([main.iloc[half:], dups]), late_rows]
    names = ["part-0001.csv", "part-0002.csv", "late-0001.csv"]
    for i, (part, name) in enumerate(zip(parts, names, strict=True)):
        buf = io.BytesIO()
        pacsv.write_csv(
            pa.Table.from_pandas(part, preserve_index=False), buf, pacsv.WriteOptions(quoting_style="needed")
        )
        data = buf.getvalue()
        if i == 1:  # one line with a stray delimiter, as exported by a system that forgot to quote
            data += (
                f"T{partition.replace('-', '')}-BROKEN,C00001,{partition}T12:00:00Z,"
                "10,00,USD,grocery,web,US,approved,false\n"
            ).encode()
            m.malformed_lines += 1
        m.files.append(_write(lake, f"transactions/date={partition}/{name}", data))
    m.landed_records = n + len(dup_src) + m.malformed_lines
    m.duplicates = len(dup_src)
    m.late_arriving = len(late)
    m.unparsable = {"amount": len(bad_amt)}
    m.dropped = {"amount_null": len(null_amt), "amount_out_of_range": len(neg_amt) + len(huge_amt)}
    m.quarantined = {"currency_not_in_set": len(bad_ccy)}
    m.imputed = {"merchant_category": int((df["merchant_category"] == "").sum())}
    m.expected_governed = n - len(bad_amt) - sum(m.dropped.values()) - sum(m.quarantined.values())
    return m


def generate_customers(lake: Lake, rows: int, seed: int = 11) -> SampleManifest:
    """A CRM export: a JSON Lines snapshot (unpartitioned), with updates of some customers."""
    rng = _rng("customers", None, seed)
    n = max(50, rows // 20)
    m = SampleManifest("customers", None)
    dup_src, null_seg, bad_risk, no_id = _disjoint(
        rng, n, [max(1, n // 50), max(1, n // 40), max(1, n // 100), max(1, n // 100)]
    )
    created = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 600 * 86_400, n), unit="s")
    records = []
    for i in range(n):
        records.append(
            {
                "customer_id": None if i in set(no_id) else f"C{i:05d}",
                "name": f"Customer {i}",
                "email": f"  Customer.{i}@Example.COM " if i % 7 == 0 else f"customer.{i}@example.com",
                "segment": None if i in set(null_seg) else str(rng.choice(SEGMENTS)),
                "country": str(rng.choice(COUNTRIES)),
                "risk_rating": "very-high" if i in set(bad_risk) else str(rng.choice(RISK)),
                "updated_at": created[i].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    for i in dup_src:  # a later update of the same customer
        newer = dict(records[i])
        newer["updated_at"] = (created[i] + pd.Timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        newer["segment"] = "corporate"
        records.append(newer)
    lines = [json.dumps(r) for r in records]
    lines.insert(len(lines) // 2, '{"customer_id": "C99999", "name": "truncated')
    m.malformed_lines = 1
    m.files.append(_write(lake, "customers/customers.jsonl", ("\n".join(lines) + "\n").encode()))
    m.landed_records = len(lines)
    m.duplicates = len(dup_src)
    m.dropped = {"customer_id_null": len(no_id)}
    m.quarantined = {"risk_rating_not_in_set": len(bad_risk)}
    m.imputed = {"segment": len(null_seg)}
    m.expected_governed = n - len(no_id) - len(bad_risk)
    return m


def generate_market_data(lake: Lake, partition: str, rows: int, seed: int = 13) -> SampleManifest:
    """Minute bars from a market-data vendor as Parquet: spikes, gaps (nulls) and resent bars."""
    rng = _rng("market_data", partition, seed)
    per_symbol = max(10, rows // len(SYMBOLS))
    n = per_symbol * len(SYMBOLS)
    m = SampleManifest("market_data", partition)
    start = pd.Timestamp(_day_start(partition))
    symbol = np.repeat(SYMBOLS, per_symbol)
    ts = start + pd.to_timedelta(np.tile(np.arange(per_symbol), len(SYMBOLS)), unit="min")
    base = np.repeat(rng.uniform(20, 400, len(SYMBOLS)), per_symbol)
    walk = np.concatenate([np.cumsum(rng.normal(0, 0.002, per_symbol)) for _ in SYMBOLS])
    close = np.round(base * np.exp(walk), 4)
    spikes, gaps, dup_src = _disjoint(rng, n, [max(1, n // 200), max(1, n // 100), max(1, n // 100)])
    gaps = gaps[gaps % per_symbol != 0]  # a gap needs an earlier bar of its symbol to forward-fill from
    close_with_faults = close.copy()
    close_with_faults[spikes] *= 25.0
    close_with_faults[gaps] = np.nan
    df = pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": np.round(close * (1 + rng.normal(0, 0.0005, n)), 4),
            "high": np.round(close * 1.001, 4),
            "low": np.round(close * 0.999, 4),
            "close": close_with_faults,
            "volume": rng.integers(100, 50_000, n),
        }
    )
    df = pd.concat([df, df.iloc[dup_src]], ignore_index=True)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    m.files.append(_write(lake, f"market_data/date={partition}/bars-0001.parquet", buf.getvalue()))
    m.landed_records = len(df)
    m.duplicates = len(dup_src)
    m.imputed = {"close": len(gaps)}
    m.quarantined = {}
    m.expected_governed = n
    return m


def generate_fx_rates(lake: Lake, partition: str, rows: int, seed: int = 17) -> SampleManifest:
    """Reference FX rates from a treasury system: a semicolon-delimited CSV with a header comment-free layout."""
    rng = _rng("fx_rates", partition, seed)
    m = SampleManifest("fx_rates", partition)
    pairs = [f"{a}{b}" for a in CURRENCIES for b in CURRENCIES if a != b]
    hours = range(24)
    base = {p: rng.uniform(0.005, 160) for p in pairs}
    recs = []
    for p in pairs:
        for h in hours:
            recs.append((p, f"{partition}T{h:02d}:00:00Z", f"{base[p] * (1 + rng.normal(0, 0.001)):.6f}"))
    n = len(recs)
    null_rate, zero_rate = _disjoint(rng, n, [3, 2])
    lines = ["pair;ts;rate"]
    for i, (p, t, r) in enumerate(recs):
        r = "" if i in set(null_rate) else ("0" if i in set(zero_rate) else r)
        lines.append(f"{p};{t};{r}")
    m.files.append(_write(lake, f"fx_rates/date={partition}/rates.csv", ("\n".join(lines) + "\n").encode()))
    m.landed_records = n
    m.dropped = {"rate_null_or_nonpositive": len(null_rate) + len(zero_rate)}
    m.expected_governed = n - len(null_rate) - len(zero_rate)
    return m


def generate_all(lake: Lake, partition: str, size: str | int = "tiny", seed: int = 7) -> dict[str, SampleManifest]:
    rows = SIZES[size] if isinstance(size, str) else int(size)
    return {
        "transactions": generate_transactions(lake, partition, rows, seed),
        "customers": generate_customers(lake, rows, seed + 4),
        "market_data": generate_market_data(lake, partition, rows, seed + 6),
        "fx_rates": generate_fx_rates(lake, partition, rows, seed + 10),
    }
