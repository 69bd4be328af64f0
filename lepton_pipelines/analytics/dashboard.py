"""The daily HTML dashboard: one self-contained file a person opens from disk or a bucket. No Dagster.

Plotly draws the charts because an analyst expects to hover a bar for its value, zoom a trend and
toggle a series — interactions a static image cannot give — and its Python API is stable and widely
kept. The plotly.js bundle is inlined once per file (no CDN, no network: it opens offline, from a
laptop or a mail attachment). Plotly is imported inside ``render_dashboard`` only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from lepton_pipelines.analytics.summaries import PALETTE

DASHBOARD_FILE = "dashboard.html"


@dataclass
class DashboardData:
    partition: str
    kpis: pd.DataFrame
    kpi_history: pd.DataFrame  # daily_kpis of the last days, all partitions
    customers: pd.DataFrame
    market: pd.DataFrame
    devices: pd.DataFrame
    quality: pd.DataFrame
    scores: pd.DataFrame  # the day's risk scores (may be empty)
    missing: list[str] = field(default_factory=list)  # marts absent for the day, shown on the page


def _money(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"${value / size:,.2f}{unit}"
    return f"${value:,.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.2%}"


def tiles(data: DashboardData) -> list[tuple[str, str]]:
    k = data.kpis
    n = int(k["txn_count"].sum()) if not k.empty else 0
    scored = not k.empty and k["scored_count"].sum() > 0
    devices = data.devices
    return [
        ("Transactions", f"{n:,}"),
        ("Volume (USD)", _money(k["amount_usd"].sum()) if n else "n/a"),
        ("Decline rate", _pct(k["declined_count"].sum() / n) if n else "n/a"),
        ("Confirmed fraud", _pct(k["fraud_count"].sum() / n) if n else "n/a"),
        (
            "High-risk (model)",
            f"{int(k['high_risk_count'].sum()):,} · {_money(k['high_risk_amount_usd'].sum())}"
            if scored
            else "not scored",
        ),
        (
            "Customers watched",
            f"{int(data.customers['segment_label'].isin(['fraud_watch', 'elevated_risk']).sum()):,}"
            if not data.customers.empty
            else "n/a",
        ),
        (
            "Devices silent",
            f"{int((devices['status'] == 'silent').sum())} / {len(devices)}" if not devices.empty else "n/a",
        ),
    ]


def _figures(data: DashboardData) -> list[tuple[str, object]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    layout = dict(
        template="plotly_white",
        margin=dict(l=50, r=20, t=50, b=40),
        autosize=True,
        colorway=PALETTE,
        legend=dict(orientation="h", y=-0.2),
    )
    figures: list[tuple[str, object]] = []

    history = data.kpi_history
    if not history.empty:
        per_day = history.groupby("date", as_index=False).agg(
            txn_count=("txn_count", "sum"),
            amount_usd=("amount_usd", "sum"),
            fraud=("fraud_count", "sum"),
            declined=("declined_count", "sum"),
            high_risk=("high_risk_count", "sum"),
        )
        per_day["date"] = pd.to_datetime(per_day["date"]).dt.strftime("%Y-%m-%d")  # one bar per day, not a time axis
        per_day["fraud_rate"] = per_day["fraud"] / per_day["txn_count"]
        per_day["decline_rate"] = per_day["declined"] / per_day["txn_count"]
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_bar(x=per_day["date"], y=per_day["amount_usd"], name="volume (USD)", marker_color=PALETTE[0])
        fig.add_scatter(
            x=per_day["date"],
            y=per_day["fraud_rate"],
            name="fraud rate",
            mode="lines+markers",
            secondary_y=True,
            line_color=PALETTE[3],
        )
        fig.add_scatter(
            x=per_day["date"],
            y=per_day["decline_rate"],
            name="decline rate",
            mode="lines+markers",
            secondary_y=True,
            line_color=PALETTE[6],
        )
        fig.update_layout(title="Daily volume, fraud and decline rates", **layout)
        fig.update_xaxes(type="category")
        fig.update_yaxes(title_text="USD", secondary_y=False)
        fig.update_yaxes(title_text="rate", tickformat=".1%", secondary_y=True)
        figures.append(("kpi-trend", fig))

    if not data.kpis.empty:
        fig = go.Figure()
        for i, (currency, group) in enumerate(data.kpis.groupby("currency")):
            by_channel = group.groupby("channel")["amount_usd"].sum()
            fig.add_bar(
                x=by_channel.index, y=by_channel.to_numpy(), name=currency, marker_color=PALETTE[i % len(PALETTE)]
            )
        fig.update_layout(barmode="stack", title="Volume in USD by channel and currency", yaxis_title="USD", **layout)
        figures.append(("kpi-channels", fig))

    if not data.scores.empty:
        fig = go.Figure()
        fig.add_histogram(x=data.scores["risk_score"], nbinsx=40, name="transactions", marker_color=PALETTE[4])
        threshold = float(data.scores["high_risk_threshold"].iloc[0]) if "high_risk_threshold" in data.scores else 0.5
        fig.add_vline(x=threshold, line_dash="dash", line_color=PALETTE[3], annotation_text="high-risk threshold")
        version = ", ".join(sorted(data.scores["model_version"].astype(str).unique()))
        fig.update_layout(
            title=f"Transaction risk scores (model {version})",
            xaxis_title="risk score",
            yaxis_title="transactions",
            **layout,
        )
        figures.append(("risk-scores", fig))

    if not data.customers.empty:
        counts = data.customers["segment_label"].value_counts()
        fig = go.Figure(go.Bar(x=counts.index, y=counts.to_numpy(), marker_color=PALETTE[5], name="customers"))
        fig.update_layout(title="Customers by segment (customer 360)", yaxis_title="customers", **layout)
        figures.append(("customer-segments", fig))

    if not data.market.empty:
        m = data.market.sort_values("symbol")
        vol = "volatility_20d" if m["volatility_20d"].notna().any() else "intraday_volatility"
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_bar(x=m["symbol"], y=m[vol], name=vol.replace("_", " "), marker_color=PALETTE[1])
        if m["max_drawdown"].fillna(0.0).ne(0.0).any():  # a single day has no drawdown: no empty second axis
            fig.add_scatter(
                x=m["symbol"],
                y=m["max_drawdown"],
                name="max drawdown",
                mode="markers",
                secondary_y=True,
                marker=dict(color=PALETTE[3], size=9),
            )
        fig.update_layout(title="Market risk per symbol", **layout)
        fig.update_yaxes(tickformat=".2%", secondary_y=False)
        fig.update_yaxes(tickformat=".1%", secondary_y=True)
        figures.append(("market-risk", fig))

    if not data.devices.empty:
        d = data.devices
        colors = {"ok": PALETTE[2], "degraded": PALETTE[6], "silent": PALETTE[3]}
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_bar(
            x=d["device_id"],
            y=d["delivery_ratio"].fillna(0.0),
            name="delivered / expected",
            marker_color=[colors.get(s, PALETTE[0]) for s in d["status"]],
            hovertext=d["status"],
        )
        if d["anomaly_rate"].notna().any():  # NULL without a device_anomaly champion
            fig.add_scatter(
                x=d["device_id"],
                y=d["anomaly_rate"],
                name="anomaly rate",
                mode="markers",
                secondary_y=True,
                marker=dict(color=PALETTE[4], size=9),
            )
        fig.update_layout(title="Device delivery (green ok, amber degraded, red silent)", **layout)
        fig.update_yaxes(tickformat=".0%", range=[0, 1.05], secondary_y=False)
        fig.update_yaxes(tickformat=".1%", secondary_y=True)
        figures.append(("device-health", fig))

    if not data.quality.empty:
        q = data.quality
        fig = go.Figure()
        fig.add_bar(y=q["source"], x=q["governed_rows"], name="governed", orientation="h", marker_color=PALETTE[2])
        fig.add_bar(
            y=q["source"], x=q["quarantined_rows"], name="quarantined", orientation="h", marker_color=PALETTE[3]
        )
        fig.update_layout(barmode="stack", title="Governed vs quarantined rows per source", **layout)
        figures.append(("source-quality", fig))
    return figures


def _chart_html(name: str, fig) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=name,
        default_width="100%",
        default_height="360px",
        config={"displaylogo": False, "responsive": True},
    )


def render_dashboard(data: DashboardData, generated_at: datetime | None = None) -> str:
    """The whole page as one HTML string: inline CSS, inline plotly.js, one div per chart."""
    from plotly.offline import get_plotlyjs

    figures = _figures(data)
    charts = "\n".join(f'<section class="chart">{_chart_html(name, fig)}</section>' for name, fig in figures)
    tile_html = "\n".join(
        f'<div class="tile"><div class="label">{html.escape(label)}</div><div '
        f'class="value">{html.escape(value)}</div></div>'
        for label, value in tiles(data)
    )
    missing = "".join(f"<li>{html.escape(m)}</li>" for m in data.missing)
    stamp = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lepton decision support — {html.escape(data.partition)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
    background: #f8fafc; color: #0f172a; }}
header {{ padding: 18px 28px; background: #0f172a; color: #f8fafc; }}
header h1 {{ margin: 0; font-size: 22px; }} header p {{ margin: 4px 0 0; color: #94a3b8; font-size: 13px; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;
    padding: 18px 28px 0; }}
.tile {{ background: #fff; border-radius: 10px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(15,23,42,.12); }}
.tile .label {{ font-size: 12px; color: #64748b; text-transform: uppercase; letter-spacing: .04em; }}
.tile .value {{ font-size: 22px; font-weight: 600; margin-top: 4px; }}
.grid {{ display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; padding: 18px 28px 28px; }}
@media (max-width: 1000px) {{ .grid {{ grid-template-columns: minmax(0, 1fr); }} }}
.chart {{ background: #fff; border-radius: 10px; padding: 6px; box-shadow: 0 1px 3px rgba(15,23,42,.12);
    min-height: 360px; min-width: 0; overflow: hidden; }}
.missing {{ margin: 12px 28px 0; padding: 10px 16px; background: #fef3c7; border-radius: 8px; font-size: 13px; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>Decision support — {html.escape(data.partition)}</h1>
<p>From the governed lake: transactions, customers, market data, FX rates,
    device telemetry and the champion risk model. Generated {html.escape(stamp)}.</p></header>
{f'<div class="missing"><strong>Not available for this day:</strong><ul>{missing}</ul></div>' if missing else ""}
<div class="tiles">{tile_html}</div>
<main class="grid">{charts}</main>
<script>
// Charts are drawn while the page is still being laid out; fit each to its final box once it is.
window.addEventListener("load", function () {{
  document.querySelectorAll(".js-plotly-plot").forEach(function (chart) {{ Plotly.Plots.resize(chart); }});
}});
</script>
</body></html>
"""
