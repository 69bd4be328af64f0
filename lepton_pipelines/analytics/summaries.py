"""What each mart shows on its Dagster asset page: key numbers (plotted over time by the UI, since
they are numeric metadata on every materialization) and one small chart. No Dagster.

Charts are matplotlib PNGs as base64 data URIs inside Markdown metadata: the UI renders them inline,
nothing is served from elsewhere. matplotlib is imported inside ``chart_uri`` only.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pandas as pd

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#ca8a04", "#db2777"]


def _f(value) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def daily_kpis_numbers(frame: pd.DataFrame) -> dict[str, float | None]:
    n = frame["txn_count"].sum()
    scored = frame["scored_count"].sum()
    return {
        "txn_count": float(n),
        "amount_usd": _f(frame["amount_usd"].sum(min_count=1)),
        "decline_rate": _f(frame["declined_count"].sum() / n) if n else None,
        "fraud_rate": _f(frame["fraud_count"].sum() / n) if n else None,
        "high_risk_count": _f(frame["high_risk_count"].sum(min_count=1)) if scored else None,
        "high_risk_amount_usd": _f(frame["high_risk_amount_usd"].sum(min_count=1)) if scored else None,
        "unconverted_txn_count": float(frame["unconverted_txn_count"].sum()),
    }


def customer_360_numbers(frame: pd.DataFrame) -> dict[str, float | None]:
    labels = frame["segment_label"].value_counts()
    numbers: dict[str, float | None] = {
        "customers": float(len(frame)),
        "active_customers": float((frame["txn_count_30d"] > 0).sum()),
        "spend_30d_usd": _f(frame["spend_30d_usd"].sum()),
        "mean_latest_risk_score": _f(frame["latest_risk_score"].mean()),
    }
    for label in ("fraud_watch", "elevated_risk", "unregistered", "high_value", "dormant"):
        numbers[f"segment/{label}"] = float(labels.get(label, 0))
    return numbers


def market_risk_numbers(frame: pd.DataFrame) -> dict[str, float | None]:
    return {
        "symbols": float(len(frame)),
        "mean_volatility_20d": _f(frame["volatility_20d"].mean()),
        "max_volatility_20d": _f(frame["volatility_20d"].max()),
        "worst_max_drawdown": _f(frame["max_drawdown"].min()),
        "mean_daily_return": _f(frame["daily_return"].mean()),
        "mean_intraday_volatility": _f(frame["intraday_volatility"].mean()),
    }


def device_health_numbers(frame: pd.DataFrame) -> dict[str, float | None]:
    received = frame["messages_received"].sum()
    expected = frame["messages_expected"].sum()
    scored = frame["anomaly_rate"].notna()
    return {
        "devices": float(len(frame)),
        "silent_devices": float((frame["status"] == "silent").sum()),
        "degraded_devices": float((frame["status"] == "degraded").sum()),
        "delivery_ratio": _f(received / expected) if expected else None,
        "gap_count": float(frame["gap_count"].sum()),
        "anomaly_rate": _f(frame.loc[scored, "anomalies"].sum() / frame.loc[scored, "messages_received"].sum())
        if scored.any() and frame.loc[scored, "messages_received"].sum()
        else None,
    }


def source_quality_numbers(frame: pd.DataFrame) -> dict[str, float | None]:
    numbers: dict[str, float | None] = {}
    for row in frame.itertuples():
        numbers[f"governed_share/{row.source}"] = _f(row.governed_share)
        numbers[f"quarantined_rows/{row.source}"] = float(row.quarantined_rows)
    return numbers


def chart_uri(draw: Callable, frame: pd.DataFrame, size: tuple[float, float] = (8, 3.2)) -> str:
    """Render ``draw(ax, frame)`` to a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    if frame.empty:
        ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        draw(ax, frame)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def draw_daily_kpis(ax, frame: pd.DataFrame) -> None:
    pivot = frame.pivot_table(index="channel", columns="currency", values="amount_usd", aggfunc="sum", fill_value=0.0)
    pivot.plot.barh(stacked=True, ax=ax, color=PALETTE[: len(pivot.columns)], width=0.7)
    ax.set_xlabel("amount (USD)")
    ax.set_ylabel("")
    ax.set_title("Transaction volume in USD by channel and currency")
    ax.legend(fontsize=7, title="currency", title_fontsize=7, loc="lower right")


def draw_customer_360(ax, frame: pd.DataFrame) -> None:
    counts = frame["segment_label"].value_counts().sort_values()
    ax.barh(counts.index, counts.to_numpy(), color=PALETTE[0])
    ax.set_xlabel("customers")
    ax.set_title("Customers by segment label")


def draw_market_risk(ax, frame: pd.DataFrame) -> None:
    column = "volatility_20d" if frame["volatility_20d"].notna().any() else "intraday_volatility"
    ordered = frame.sort_values(column, ascending=False)
    ax.bar(ordered["symbol"], ordered[column].fillna(0.0) * 100, color=PALETTE[1])
    ax.set_ylabel(f"{column.replace('_', ' ')} (%)")
    ax.set_title("Volatility per symbol")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)


def draw_device_health(ax, frame: pd.DataFrame) -> None:
    colors = {"ok": PALETTE[2], "degraded": PALETTE[6], "silent": PALETTE[3]}
    ratio = frame["delivery_ratio"].fillna(0.0) * 100
    ax.bar(frame["device_id"], ratio, color=[colors.get(s, PALETTE[0]) for s in frame["status"]])
    ax.set_ylabel("messages received / expected (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Delivery per device (green ok, amber degraded, red silent)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)


def draw_source_quality(ax, frame: pd.DataFrame) -> None:
    ax.barh(frame["source"], frame["governed_rows"], color=PALETTE[2], label="governed")
    ax.barh(
        frame["source"], frame["quarantined_rows"], left=frame["governed_rows"], color=PALETTE[3], label="quarantined"
    )
    ax.set_xlabel("rows")
    ax.set_title("Governed vs quarantined rows per source")
    ax.legend(fontsize=7, loc="lower right")


SUMMARIES: dict[str, tuple[Callable[[pd.DataFrame], dict], Callable]] = {
    "daily_kpis": (daily_kpis_numbers, draw_daily_kpis),
    "customer_360": (customer_360_numbers, draw_customer_360),
    "market_risk": (market_risk_numbers, draw_market_risk),
    "device_health": (device_health_numbers, draw_device_health),
    "daily_source_quality": (source_quality_numbers, draw_source_quality),
}
