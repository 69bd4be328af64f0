"""The decision-support marts as SQL over the lake's Parquet, one function per mart. No Dagster.

Each ``*_sql`` function lists the partitions it needs and returns one self-contained SELECT (file
lists inlined), so the asset, the benchmark and an analyst run the very same text. Each mart is
computed for one day (``partition``): the governed partitions of that day, or of a window ending
that day. Column types are pinned with casts, so a governed column that becomes ``DECIMAL(p,s)`` or
a ``date`` stored as Parquet DATE changes nothing downstream.

FX rule (daily_kpis, customer_360): an amount in currency C on day D is converted to USD with the
mean of D's hourly fixings of ``CUSD``; when only ``USDC`` is quoted, with 1 / mean(``USDC``);
USD is 1. D is the transactions partition (the business day they were booked on), so a late-
arriving event of yesterday is converted with today's rate, like the books. A currency without a
rate that day leaves ``amount_usd`` NULL and is counted in ``unconverted_txn_count``, which a
check turns into a failure — never a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from lepton_pipelines.analytics.engine import TableFiles, empty_scan, parquet_scan, table_files, window
from lepton_pipelines.lake.store import Lake

if TYPE_CHECKING:  # duckdb is imported by the step that queries (engine.connect), not at definitions load
    import duckdb

CUSTOMER_WINDOW_DAYS = 30
MARKET_RETURNS = 20  # rolling volatility over the last 20 daily returns (21 closes)
MARKET_LOOKBACK_DAYS = 45  # calendar days searched for those 21 trading days
DEVICE_WINDOW_DAYS = 7  # a device silent today but seen this week is reported as silent, not forgotten
DEGRADED_DELIVERY_RATIO = 0.95
HIGH_VALUE_SHARE = 0.10  # top 10% of 30-day USD spend among customers who spent
RISK_MODEL = "transaction_risk"
ANOMALY_MODEL = "device_anomaly"

_TXN_COLUMNS = {
    "txn_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "event_ts": "TIMESTAMPTZ",
    "amount": "DOUBLE",
    "currency": "VARCHAR",
    "merchant_category": "VARCHAR",
    "channel": "VARCHAR",
    "country": "VARCHAR",
    "status": "VARCHAR",
    "is_fraud": "BOOLEAN",
    "date": "DATE",
}
_FX_COLUMNS = {"pair": "VARCHAR", "ts": "TIMESTAMPTZ", "rate": "DOUBLE", "date": "DATE"}
_SCORE_COLUMNS = {
    "txn_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "event_ts": "TIMESTAMPTZ",
    "risk_score": "DOUBLE",
    "is_high_risk": "BOOLEAN",
    "model_version": "VARCHAR",
    "date": "DATE",
}


class MartInputError(ValueError):
    """A governed input the mart cannot do without is missing; names the path and what to materialize."""


@dataclass(frozen=True)
class MartQuery:
    """One mart's SQL for one day, and what it read (for lineage metadata and reconciliation)."""

    name: str
    partition: str
    sql: str
    inputs: dict[str, list[str]]  # input table → partitions read ("" for an unpartitioned table)
    notes: tuple[str, ...] = ()  # inputs that were absent and how the mart shows it


def _scan(files: TableFiles, partitions: list[str] | None, columns: dict[str, str]) -> str:
    chosen = files.files(partitions)
    return parquet_scan(chosen) if chosen else empty_scan(columns)


def _require(files: TableFiles, partition: str, what: str) -> None:
    if partition not in files.by_partition:
        raise MartInputError(
            f"{what} has no partition {partition} at {files.location}: materialize {what} for {partition} first"
        )


def _d(partition: str) -> str:
    date.fromisoformat(partition)  # refuses anything but YYYY-MM-DD before it reaches SQL
    return f"DATE '{partition}'"


def usd_rates_sql(fx_scan: str) -> str:
    """(date, currency, usd_per_unit) from fx fixings: direct ``CUSD`` first, else the inverse of ``USDC``."""
    return f"""
    fx_day AS (
        SELECT date, upper(pair) AS pair, avg(CAST(rate AS DOUBLE)) AS rate
        FROM {fx_scan} WHERE rate > 0 GROUP BY ALL
    ),
    usd_rates AS (
        SELECT date, currency, arg_min(usd_per_unit, preference) AS usd_per_unit FROM (
            SELECT date, substr(pair, 1, 3) AS currency, rate AS usd_per_unit, 1 AS preference
            FROM fx_day WHERE substr(pair, 4, 3) = 'USD' AND substr(pair, 1, 3) <> 'USD'
            UNION ALL
            SELECT date, substr(pair, 4, 3), 1.0 / rate, 2
            FROM fx_day WHERE substr(pair, 1, 3) = 'USD' AND substr(pair, 4, 3) <> 'USD'
        ) GROUP BY ALL
    )"""


# USD needs no fixing: it converts at 1 even on a day whose fx_rates partition is missing.
USD_PER_UNIT = "CASE WHEN t.currency = 'USD' THEN 1.0 ELSE r.usd_per_unit END"


def _txn_select(scan: str) -> str:
    # Keys that a GX in-set check lets through as NULL are reported as 'unknown', never dropped.
    return f"""
        SELECT CAST(txn_id AS VARCHAR) AS txn_id, CAST(customer_id AS VARCHAR) AS customer_id,
               CAST(event_ts AS TIMESTAMPTZ) AS event_ts, CAST(amount AS DOUBLE) AS amount,
               upper(CAST(currency AS VARCHAR)) AS currency,
               coalesce(CAST(channel AS VARCHAR), 'unknown') AS channel,
               coalesce(CAST(country AS VARCHAR), 'unknown') AS country,
               lower(CAST(status AS VARCHAR)) AS status, CAST(is_fraud AS BOOLEAN) AS is_fraud, date
        FROM {scan}"""


# -- analytics/daily_kpis -------------------------------------------------------------------------
def daily_kpis_sql(lake: Lake, partition: str) -> MartQuery:
    """Per (channel, country, currency) for the day: counts, amounts (original and USD), decline and
    confirmed-fraud rates, and the champion model's high-risk count and amount."""
    txns = table_files(lake, "governed", "transactions")
    _require(txns, partition, "transactions/governed")
    fx = table_files(lake, "governed", "fx_rates")
    scores = table_files(lake, "models", RISK_MODEL, "scores")
    notes = []
    if partition not in fx.by_partition:
        notes.append(
            f"fx_rates/governed has no partition {partition}: amount_usd is NULL (check all_amounts_converted fails)"
        )
    if partition not in scores.by_partition:
        notes.append(f"models/{RISK_MODEL}/scores has no partition {partition}: high-risk columns are NULL")
    sql = f"""
    WITH txn AS ({_txn_select(_scan(txns, [partition], _TXN_COLUMNS))}),
    {usd_rates_sql(_scan(fx, [partition], _FX_COLUMNS))},
    scores AS (SELECT CAST(txn_id AS VARCHAR) AS txn_id, CAST(risk_score AS DOUBLE) AS risk_score,
                      CAST(is_high_risk AS BOOLEAN) AS is_high_risk, CAST(model_version AS VARCHAR) AS model_version
               FROM {_scan(scores, [partition], _SCORE_COLUMNS)}),
    joined AS (
        SELECT t.*, {USD_PER_UNIT} AS usd_per_unit, t.amount * {USD_PER_UNIT} AS amount_usd, s.risk_score,
            s.is_high_risk, s.model_version
        FROM txn t
        LEFT JOIN usd_rates r ON r.currency = t.currency
        LEFT JOIN scores s ON s.txn_id = t.txn_id
    )
    SELECT {_d(partition)} AS date, channel, country, currency,
           count(*) AS txn_count,
           sum(amount) AS amount,
           sum(amount_usd) AS amount_usd,
           any_value(usd_per_unit) AS usd_per_unit,
           count(*) FILTER (WHERE amount_usd IS NULL) AS unconverted_txn_count,
           count(*) FILTER (WHERE status = 'declined') AS declined_count,
           count(*) FILTER (WHERE status = 'declined') / count(*) AS decline_rate,
           count(*) FILTER (WHERE is_fraud) AS fraud_count,
           count(*) FILTER (WHERE is_fraud) / count(*) AS fraud_rate,
           count(risk_score) AS scored_count,
           CASE WHEN count(risk_score) > 0 THEN count(*) FILTER (WHERE is_high_risk) END AS high_risk_count,
           CASE WHEN count(risk_score) > 0 THEN coalesce(sum(amount_usd) FILTER (WHERE is_high_risk),
               0) END AS high_risk_amount_usd,
           avg(risk_score) AS mean_risk_score,
           string_agg(DISTINCT model_version, ',' ORDER BY model_version) AS model_versions
    FROM joined
    GROUP BY ALL
    ORDER BY channel, country, currency"""
    return MartQuery(
        "daily_kpis",
        partition,
        sql,
        {
            "transactions/governed": [partition],
            "fx_rates/governed": [partition] if partition in fx.by_partition else [],
            f"models/{RISK_MODEL}/scores": [partition] if partition in scores.by_partition else [],
        },
        tuple(notes),
    )


# -- analytics/daily_source_quality ---------------------------------------------------------------
def source_quality_sql(lake: Lake, partition: str, sources: list[tuple[str, bool]]) -> MartQuery:
    """Per source: governed vs quarantined rows for the day (a snapshot for unpartitioned sources),
    read from Parquet footers only, so it works whatever each source's (or quarantine's) schema is."""
    selects = []
    for source, partitioned in sources:
        key = partition if partitioned else None
        governed = table_files(lake, "governed", source).by_partition.get(key, [])
        quarantine = table_files(lake, "quarantine", source).by_partition.get(key, [])
        parts = []
        if governed:
            parts.append(
                f"SELECT 'governed' AS zone, '' AS stage, num_rows FROM parquet_file_metadata({_list(governed)})"
            )
        if quarantine:
            parts.append(
                "SELECT 'quarantine', regexp_extract(file_name, '([^/]+)\\.parquet$', 1), num_rows "
                f"FROM parquet_file_metadata({_list(quarantine)})"
            )
        counts = (
            " UNION ALL ".join(parts)
            if parts
            else "SELECT NULL AS zone, NULL AS stage, 0::BIGINT AS num_rows WHERE false"
        )
        selects.append(f"""
        SELECT '{source}' AS source, {"true" if partitioned else "false"} AS partitioned,
               {"true" if governed else "false"} AS governed_published,
               coalesce(sum(num_rows) FILTER (WHERE zone = 'governed'), 0)::BIGINT AS governed_rows,
               coalesce(sum(num_rows) FILTER (WHERE zone = 'quarantine'), 0)::BIGINT AS quarantined_rows,
               coalesce(sum(num_rows) FILTER (WHERE zone = 'quarantine' AND stage IN ('raw', 'landing')),
                   0)::BIGINT AS quarantined_unparsable,
               coalesce(sum(num_rows) FILTER (WHERE zone = 'quarantine' AND stage = 'clean'),
                   0)::BIGINT AS quarantined_by_cleaning,
               coalesce(sum(num_rows) FILTER (WHERE zone = 'quarantine' AND stage = 'governed'),
                   0)::BIGINT AS quarantined_by_checks
        FROM ({counts})""")
    body = " UNION ALL ".join(selects) if selects else "SELECT NULL::VARCHAR AS source WHERE false"
    sql = f"""
    SELECT {_d(partition)} AS date, *,
           governed_rows + quarantined_rows AS landed_rows,
           CASE WHEN governed_rows + quarantined_rows > 0 THEN governed_rows / (governed_rows + quarantined_rows) END
                AS governed_share,
           CASE WHEN governed_rows + quarantined_rows > 0 THEN quarantined_rows / (governed_rows + quarantined_rows) END
                AS quarantined_share
    FROM ({body}) ORDER BY source"""
    return MartQuery(
        "daily_source_quality", partition, sql, {f"{s}/governed": [partition if p else ""] for s, p in sources}
    )


def _list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


# -- analytics/customer_360 -----------------------------------------------------------------------
SEGMENT_RULES = (
    ("unregistered", "transacts but is not in governed customers (a KYC gap to chase)"),
    ("fraud_watch", "at least one confirmed fraud in the last 30 days"),
    ("elevated_risk", "latest risk score at or above the high-risk threshold, or KYC risk rating 'high'"),
    ("dormant", "no transaction in the last 30 days"),
    ("high_value", f"top {HIGH_VALUE_SHARE:.0%} of 30-day USD spend among customers who transacted"),
    ("active", "everyone else"),
)
"""Segment labels of ``customer_360``, first matching rule wins (in this order)."""


def customer_360_sql(lake: Lake, partition: str) -> MartQuery:
    """One row per customer known to the CRM or seen transacting in the 30 days ending ``partition``.

    Profile columns come from governed ``customers`` (PII — name, e-mail — is left out on purpose:
    join ``governed.customers`` where you are entitled to it). ``latest_risk_score`` is the champion's
    score of the customer's most recent scored transaction in the window.
    """
    customers = table_files(lake, "governed", "customers")
    if not customers.files():
        raise MartInputError(
            f"customers/governed is empty at {customers.location}: materialize customers/governed first"
        )
    days = window(partition, CUSTOMER_WINDOW_DAYS)
    txns = table_files(lake, "governed", "transactions")
    _require(txns, partition, "transactions/governed")
    fx = table_files(lake, "governed", "fx_rates")
    scores = table_files(lake, "models", RISK_MODEL, "scores")
    read = [d for d in days if d in txns.by_partition]
    sql = f"""
    WITH txn AS ({_txn_select(_scan(txns, read, _TXN_COLUMNS))}),
    {usd_rates_sql(_scan(fx, [d for d in read if d in fx.by_partition], _FX_COLUMNS))},
    tx AS (SELECT t.*, t.amount * {USD_PER_UNIT} AS amount_usd FROM txn t
           LEFT JOIN usd_rates r ON r.date = t.date AND r.currency = t.currency),
    sc AS (SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(txn_id AS VARCHAR) AS txn_id,
                  CAST(event_ts AS TIMESTAMPTZ) AS event_ts, CAST(risk_score AS DOUBLE) AS risk_score,
                  CAST(is_high_risk AS BOOLEAN) AS is_high_risk, CAST(model_version AS VARCHAR) AS model_version
           FROM {_scan(scores, [d for d in read if d in scores.by_partition], _SCORE_COLUMNS)}),
    risk AS (SELECT customer_id, arg_max(risk_score, (event_ts, txn_id)) AS latest_risk_score,
                    arg_max(model_version, (event_ts, txn_id)) AS risk_model_version,
                    arg_max(is_high_risk, (event_ts, txn_id)) AS latest_is_high_risk,
                        max(risk_score) AS max_risk_score_30d,
                    count(*) FILTER (WHERE is_high_risk) AS high_risk_txn_count_30d
             FROM sc GROUP BY customer_id),
    activity AS (
        SELECT customer_id, count(*) AS txn_count_30d, sum(amount_usd) AS spend_30d_usd,
               count(*) FILTER (WHERE amount_usd IS NULL) AS unconverted_txn_count_30d,
               list_sort(list(DISTINCT channel)) AS channels_used, count(DISTINCT channel) AS channel_count,
               count(*) FILTER (WHERE is_fraud) AS fraud_count_30d,
                   count(*) FILTER (WHERE status = 'declined') AS declined_count_30d,
               max(event_ts) FILTER (WHERE is_fraud) AS last_fraud_at, max(event_ts) AS last_txn_at
        FROM tx GROUP BY customer_id),
    crm AS (SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(segment AS VARCHAR) AS crm_segment,
                   CAST(country AS VARCHAR) AS country, lower(CAST(risk_rating AS VARCHAR)) AS kyc_risk_rating,
                   CAST(updated_at AS TIMESTAMPTZ) AS profile_updated_at
            FROM {parquet_scan(customers.files())}),
    merged AS (
        SELECT coalesce(c.customer_id, a.customer_id) AS customer_id, c.customer_id IS NOT NULL AS in_crm,
               c.crm_segment, c.country, c.kyc_risk_rating, c.profile_updated_at,
               coalesce(a.txn_count_30d, 0) AS txn_count_30d, coalesce(a.spend_30d_usd, 0.0) AS spend_30d_usd,
               coalesce(a.unconverted_txn_count_30d, 0) AS unconverted_txn_count_30d,
               coalesce(a.channels_used, []::VARCHAR[]) AS channels_used, coalesce(a.channel_count, 0) AS channel_count,
               coalesce(a.fraud_count_30d, 0) AS fraud_count_30d, coalesce(a.declined_count_30d,
                   0) AS declined_count_30d,
               CASE WHEN a.txn_count_30d > 0 THEN a.declined_count_30d / a.txn_count_30d END AS decline_rate_30d,
               a.last_fraud_at, a.last_txn_at,
               r.latest_risk_score, r.max_risk_score_30d, coalesce(r.high_risk_txn_count_30d,
                   0) AS high_risk_txn_count_30d,
               coalesce(r.latest_is_high_risk, false) AS latest_is_high_risk, r.risk_model_version
        FROM crm c FULL OUTER JOIN activity a ON a.customer_id = c.customer_id
        LEFT JOIN risk r ON r.customer_id = coalesce(c.customer_id, a.customer_id)
    ),
    ranked AS (
        SELECT *,
            CASE WHEN txn_count_30d > 0 THEN cume_dist()
                OVER (PARTITION BY txn_count_30d > 0 ORDER BY spend_30d_usd) END
                AS spend_cume_dist
        FROM merged
    )
    SELECT {_d(partition)} AS as_of_date, customer_id, in_crm, crm_segment, country, kyc_risk_rating,
        profile_updated_at,
           txn_count_30d, spend_30d_usd, unconverted_txn_count_30d, channels_used, channel_count,
           fraud_count_30d, declined_count_30d, decline_rate_30d, last_fraud_at, last_txn_at,
           latest_risk_score, max_risk_score_30d, high_risk_txn_count_30d, risk_model_version,
           CASE
               WHEN NOT in_crm THEN 'unregistered'
               WHEN fraud_count_30d > 0 THEN 'fraud_watch'
               WHEN latest_is_high_risk OR kyc_risk_rating = 'high' THEN 'elevated_risk'
               WHEN txn_count_30d = 0 THEN 'dormant'
               WHEN spend_cume_dist > {1 - HIGH_VALUE_SHARE} THEN 'high_value'
               ELSE 'active'
           END AS segment_label
    FROM ranked ORDER BY customer_id"""
    return MartQuery(
        "customer_360",
        partition,
        sql,
        {
            "customers/governed": [""],
            "transactions/governed": read,
            "fx_rates/governed": [d for d in read if d in fx.by_partition],
            f"models/{RISK_MODEL}/scores": [d for d in read if d in scores.by_partition],
        },
    )


# -- analytics/market_risk -----------------------------------------------------------------------
def market_risk_sql(lake: Lake, partition: str) -> MartQuery:
    """Per symbol traded on ``partition``: the day's close and return, 20-day rolling volatility of daily
    returns (and annualized, × √252), max drawdown over the window's closes, and intraday volatility
    of one-minute log returns. Trading days are the governed partitions present (no calendar guess)."""
    bars = table_files(lake, "governed", "market_data")
    _require(bars, partition, "market_data/governed")
    days = [d for d in window(partition, MARKET_LOOKBACK_DAYS) if d in bars.by_partition][-(MARKET_RETURNS + 1) :]
    sql = f"""
    WITH bars AS (SELECT CAST(symbol AS VARCHAR) AS symbol, CAST(ts AS TIMESTAMPTZ) AS ts,
        CAST(close AS DOUBLE) AS close,
                         CAST(high AS DOUBLE) AS high, CAST(low AS DOUBLE) AS low, CAST(volume AS BIGINT) AS volume,
                             date
                  FROM {parquet_scan(bars.files(days))}),
    intraday AS (
        SELECT symbol, stddev_samp(ln(close / prev_close)) AS intraday_volatility
        FROM (SELECT symbol, close,
            lag(close) OVER (PARTITION BY symbol ORDER BY ts) AS prev_close FROM bars WHERE date = {_d(partition)})
        WHERE prev_close > 0 AND close > 0 GROUP BY symbol),
    daily AS (SELECT symbol, date, arg_max(close, ts) AS close, sum(volume)::BIGINT AS volume, count(*) AS bars,
                     max(high) AS high, min(low) AS low
              FROM bars GROUP BY symbol, date),
    returns AS (SELECT *, close / lag(close) OVER (PARTITION BY symbol ORDER BY date) - 1 AS daily_return,
                       close / max(close) OVER (PARTITION BY symbol ORDER BY date
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS drawdown
                FROM daily),
    stats AS (SELECT symbol, stddev_samp(daily_return) AS volatility_20d, count(daily_return) AS returns_in_window,
                     min(drawdown) AS max_drawdown, count(*) AS days_in_window
              FROM returns GROUP BY symbol)
    SELECT r.date, r.symbol, r.close, r.high, r.low, r.volume, r.bars, r.daily_return,
           s.volatility_20d, s.volatility_20d * sqrt(252) AS volatility_20d_annualized, s.returns_in_window,
           s.max_drawdown, s.days_in_window, i.intraday_volatility
    FROM returns r JOIN stats s USING (symbol) LEFT JOIN intraday i USING (symbol)
    WHERE r.date = {_d(partition)}
    ORDER BY r.symbol"""
    return MartQuery("market_risk", partition, sql, {"market_data/governed": days})


# -- analytics/device_health ---------------------------------------------------------------------
def device_health_sql(lake: Lake, partition: str, anomaly_relation: str | None = None) -> MartQuery:
    """Per device seen in the 7 days ending ``partition``: messages received that day vs expected from
    its own sequence counter (max seq - min seq + 1), gaps in that counter, the anomaly rate flagged
    by the ``device_anomaly`` champion (``anomaly_relation``: a relation of (device_id, seq, is_anomaly)
    registered by the caller; NULL when there is no model), last seen, and a status."""
    telemetry = table_files(lake, "governed", "device_telemetry")
    _require(telemetry, partition, "device_telemetry/governed")
    days = [d for d in window(partition, DEVICE_WINDOW_DAYS) if d in telemetry.by_partition]
    anomalies = (
        "SELECT CAST(device_id AS VARCHAR) AS device_id, CAST(seq AS BIGINT) AS seq, CAST(is_anomaly AS BOOLEAN) AS "
        f"is_anomaly FROM {anomaly_relation}"
        if anomaly_relation
        else "SELECT NULL::VARCHAR AS device_id, NULL::BIGINT AS seq, NULL::BOOLEAN AS is_anomaly WHERE false"
    )
    sql = f"""
    WITH tel AS (SELECT CAST(device_id AS VARCHAR) AS device_id, CAST(ts AS TIMESTAMPTZ) AS ts,
        CAST(seq AS BIGINT) AS seq, date
                 FROM {parquet_scan(telemetry.files(days))}),
    today AS (SELECT device_id, ts, seq, seq - lag(seq) OVER (PARTITION BY device_id ORDER BY seq) AS step
              FROM tel WHERE date = {_d(partition)}),
    flags AS ({anomalies}),
    received AS (
        SELECT t.device_id, count(*) AS messages_received, max(t.seq) - min(t.seq) + 1 AS messages_expected,
               count(*) FILTER (WHERE t.step > 1) AS gap_count, coalesce(sum(t.step - 1) FILTER (WHERE t.step > 1),
                   0) AS messages_missing,
               count(f.is_anomaly) AS messages_scored, count(*) FILTER (WHERE f.is_anomaly) AS anomalies,
               min(t.ts) AS first_seen_today
        FROM today t LEFT JOIN flags f ON f.device_id = t.device_id AND f.seq = t.seq
        GROUP BY t.device_id),
    seen AS (SELECT device_id, max(ts) AS last_seen FROM tel GROUP BY device_id)
    SELECT {_d(partition)} AS date, s.device_id,
           coalesce(r.messages_received, 0) AS messages_received, r.messages_expected,
           CASE WHEN r.messages_expected > 0 THEN r.messages_received / r.messages_expected END AS delivery_ratio,
           coalesce(r.gap_count, 0) AS gap_count, coalesce(r.messages_missing, 0) AS messages_missing,
           coalesce(r.anomalies, 0) AS anomalies,
           CASE WHEN r.messages_scored > 0 THEN r.anomalies / r.messages_scored END AS anomaly_rate,
           s.last_seen,
           date_diff('minute', s.last_seen,
               CAST({_d(partition)} + INTERVAL 1 DAY AS TIMESTAMPTZ)) / 60.0 AS hours_since_last_seen,
           CASE WHEN r.messages_received IS NULL THEN 'silent'
                WHEN r.messages_received / r.messages_expected < {DEGRADED_DELIVERY_RATIO} THEN 'degraded'
                ELSE 'ok' END AS status
    FROM seen s LEFT JOIN received r USING (device_id)
    ORDER BY s.device_id"""
    return MartQuery("device_health", partition, sql, {"device_telemetry/governed": days})


def run(con: duckdb.DuckDBPyConnection, query: MartQuery) -> pd.DataFrame:
    """The mart as a pandas frame. DATE columns stay dates (pandas would widen them to timestamps, and the
    published Parquet with them), so readers see ``as_of_date DATE`` as the SQL declares."""
    result = con.execute(query.sql)
    dates = [name for name, kind, *_ in result.description if str(kind).upper() == "DATE"]
    frame = result.df()
    for column in dates:
        frame[column] = frame[column].dt.date.where(frame[column].notna(), None)
    return frame
