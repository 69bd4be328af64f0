"""Dagster definitions of decision support: the marts, the batch risk scores, the daily dashboard and
a job + schedule that refresh them after the lakehouse's daily run."""

from __future__ import annotations

import dagster as dg

from lepton_pipelines.analytics import marts
from lepton_pipelines.analytics.assets import (
    DASHBOARD_KEY,
    IO_MANAGER_KEY,
    build_device_health,
    dashboard_asset,
    mart_asset,
    mart_key,
    window_dep,
)
from lepton_pipelines.contract import SourceContract
from lepton_pipelines.models.config import load_models, model_by_name
from lepton_pipelines.models.scoring import build_scores_asset, scores_key

DEFAULT_START = "2026-01-01"


def governed(source: str) -> dg.AssetKey:
    return dg.AssetKey([source, "governed"])


def build_analytics_defs(sources: list[SourceContract]) -> dg.Definitions:
    by_name = {s.name: s for s in sources}
    start = by_name["transactions"].spec.start_date if "transactions" in by_name else DEFAULT_START
    daily = dg.DailyPartitionsDefinition(start_date=start, timezone="UTC")
    risk_model = model_by_name(marts.RISK_MODEL, load_models())
    scores = build_scores_asset(risk_model, daily, IO_MANAGER_KEY)
    risk_scores = scores_key(marts.RISK_MODEL)
    quality_sources = [(s.name, s.spec.is_partitioned) for s in sources]

    assets = [
        scores,
        mart_asset(
            "daily_kpis",
            "Per day × channel × country × currency: transactions, amounts (original and in USD at that day's "
            "fx_rates), decline and confirmed-fraud rates, and the champion risk model's high-risk count and amount. "
            "The day's governed vs quarantined share per source is its sibling `analytics/daily_source_quality`.",
            [governed("transactions"), governed("fx_rates"), risk_scores],
            daily,
            lambda con, lake, day: marts.daily_kpis_sql(lake, day),
        ),
        mart_asset(
            "daily_source_quality",
            "Per source and day: governed vs quarantined rows (by stage) and the governed share — the data "
            "quality side of the daily KPIs. Unpartitioned sources report their current snapshot.",
            [governed(s.name) for s in sources],
            daily,
            lambda con, lake, day: marts.source_quality_sql(lake, day, quality_sources),
        ),
        mart_asset(
            "customer_360",
            "One row per customer (CRM ∪ transacting in the last 30 days): profile without PII, 30-day USD spend, "
            "transaction count, channels used, fraud and decline history, latest champion risk score and a segment "
            "label. Segment rules, first match wins: "
            + "; ".join(f"`{label}` — {rule}" for label, rule in marts.SEGMENT_RULES)
            + ".",
            [
                governed("customers"),
                window_dep(governed("transactions"), marts.CUSTOMER_WINDOW_DAYS),
                window_dep(governed("fx_rates"), marts.CUSTOMER_WINDOW_DAYS),
                window_dep(risk_scores, marts.CUSTOMER_WINDOW_DAYS),
            ],
            daily,
            lambda con, lake, day: marts.customer_360_sql(lake, day),
        ),
        mart_asset(
            "market_risk",
            "Per symbol and day: close, daily return, 20-day rolling volatility (and annualized), max drawdown over "
            "the window, intraday volatility of one-minute returns — from governed market_data.",
            [window_dep(governed("market_data"), marts.MARKET_LOOKBACK_DAYS)],
            daily,
            lambda con, lake, day: marts.market_risk_sql(lake, day),
        ),
        mart_asset(
            "device_health",
            "Per device seen in the last 7 days: messages received vs expected from its sequence counter, gaps, "
            "anomaly rate from the device_anomaly champion, last seen, and status (ok / degraded / silent).",
            [
                window_dep(governed("device_telemetry"), marts.DEVICE_WINDOW_DAYS),
                dg.AssetKey(["models", marts.ANOMALY_MODEL]),
            ],
            daily,
            build_device_health,
        ),
        dashboard_asset(daily, risk_scores),
    ]
    refresh_job = dg.define_asset_job(
        "analytics_daily",
        selection=dg.AssetSelection.assets(
            risk_scores,
            DASHBOARD_KEY,
            *[
                mart_key(n)
                for n in ("daily_kpis", "daily_source_quality", "customer_360", "market_risk", "device_health")
            ],
        ),
        description="Scores, marts and dashboard for one day, in dependency order.",
    )
    refresh = dg.build_schedule_from_partitioned_job(refresh_job, hour_of_day=6, minute_of_hour=0)
    return dg.Definitions(
        assets=assets,
        jobs=[refresh_job],
        schedules=[refresh],
    )
