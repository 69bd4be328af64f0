"""Contracts of the marts: what each published mart must reconcile to in the governed lake. No Dagster.

Every check reads the mart *as published* (the Parquet file a reader would open) and recomputes its
reference from the governed inputs by a different route than the mart's SQL — row counts from
Parquet footers or plain ``count(*)``, amounts aggregated per currency and day first and converted
after — so a wrong join, a lost NULL key or a double-counted row fails a check instead of reaching a
dashboard. Governance does not stop at the lake's edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_pipelines.analytics.engine import empty_scan, parquet_scan, table_files
from lepton_pipelines.analytics.marts import (
    _FX_COLUMNS,
    RISK_MODEL,
    USD_PER_UNIT,
    MartQuery,
    usd_rates_sql,
)
from lepton_pipelines.lake.store import Lake

if TYPE_CHECKING:  # duckdb is imported by the step that queries (engine.connect), not at definitions load
    import duckdb

ROW_COUNT = "row_count_reconciles"
NO_NULL_KEYS = "no_null_keys"
TOTALS = "totals_match_governed"
CONVERTED = "all_amounts_converted"
SCORED = "risk_scores_complete"
RELATIVE_TOLERANCE = 1e-9  # float sums in a different order differ in the last bits, never by more


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    warn_only: bool = False


MART_KEYS = {
    "daily_kpis": ("date", "channel", "country", "currency"),
    "customer_360": ("as_of_date", "customer_id"),
    "market_risk": ("date", "symbol"),
    "device_health": ("date", "device_id"),
    "daily_source_quality": ("date", "source"),
}

CHECK_DESCRIPTIONS = {
    ROW_COUNT: "Rows reconcile with the governed inputs (one row per key present in them, nothing lost or invented).",
    NO_NULL_KEYS: "No key column is NULL and no key repeats.",
    TOTALS: "Totals equal the sums of the governed inputs (counts, amounts per currency, USD "
    "after conversion, volumes).",
    CONVERTED: "Every amount was converted to USD with that day's fx_rates.",
    SCORED: "Every transaction has a risk score from models/transaction_risk/scores (WARN: the mart still publishes).",
}

CHECKS_BY_MART = {
    "daily_kpis": (ROW_COUNT, NO_NULL_KEYS, TOTALS, CONVERTED, SCORED),
    "customer_360": (ROW_COUNT, NO_NULL_KEYS, TOTALS, CONVERTED),
    "market_risk": (ROW_COUNT, NO_NULL_KEYS, TOTALS),
    "device_health": (ROW_COUNT, NO_NULL_KEYS, TOTALS),
    "daily_source_quality": (ROW_COUNT, NO_NULL_KEYS),
}


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchone()


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-6)


def null_keys_outcome(con: duckdb.DuckDBPyConnection, mart: str, published: str) -> CheckOutcome:
    keys = MART_KEYS[mart]
    nulls = " + ".join(f"count(*) FILTER (WHERE {k} IS NULL)" for k in keys)
    null_count, rows, distinct = _one(
        con, f"SELECT {nulls}, count(*), count(DISTINCT ({', '.join(keys)})) FROM {published}"
    )
    duplicates = rows - distinct
    passed = null_count == 0 and duplicates == 0
    return CheckOutcome(
        NO_NULL_KEYS,
        passed,
        "keys are complete and unique"
        if passed
        else f"{null_count} NULL key value(s), {duplicates} repeated key(s) in ({', '.join(keys)})",
        {"keys": ", ".join(keys), "null_key_values": int(null_count), "repeated_keys": int(duplicates)},
    )


def _count_outcome(name: str, expected: int, actual: int, what: str) -> CheckOutcome:
    passed = int(expected) == int(actual)
    return CheckOutcome(
        name,
        passed,
        f"{actual} {what}" + ("" if passed else f", governed inputs give {expected}"),
        {"mart": int(actual), "governed": int(expected)},
    )


def _totals_outcome(pairs: dict[str, tuple[float | None, float | None]]) -> CheckOutcome:
    """``pairs``: label → (mart, governed)."""
    off = {label: values for label, values in pairs.items() if not _close(*values)}
    metadata = {f"{label} (mart)": _num(m) for label, (m, _) in pairs.items()}
    metadata.update({f"{label} (governed)": _num(g) for label, (_, g) in pairs.items()})
    description = (
        "every total matches"
        if not off
        else "; ".join(f"{k}: mart {_num(m)} vs governed {_num(g)}" for k, (m, g) in off.items())
    )
    return CheckOutcome(TOTALS, not off, description, metadata)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _governed_txn_totals(con: duckdb.DuckDBPyConnection, lake: Lake, days: list[str]) -> dict[str, Any]:
    """Counts and amounts of the governed transactions of ``days``: per currency and day first, then
    converted with that day's rate — the other way round from the marts, which convert row by row."""
    txns = table_files(lake, "governed", "transactions")
    fx = table_files(lake, "governed", "fx_rates")
    fx_files = fx.files([d for d in days if d in fx.by_partition])
    scan = parquet_scan(txns.files(days))
    row = _one(
        con,
        f"""
        WITH {usd_rates_sql(parquet_scan(fx_files) if fx_files else empty_scan(_FX_COLUMNS)).strip()},
        per_currency AS (SELECT date, upper(CAST(currency AS VARCHAR)) AS currency, count(*) AS n,
                                sum(CAST(amount AS DOUBLE)) AS amount,
                                    count(*) FILTER (WHERE CAST(is_fraud AS BOOLEAN)) AS fraud
                         FROM {scan} GROUP BY ALL),
        converted AS (SELECT t.*, t.amount * {USD_PER_UNIT} AS amount_usd FROM per_currency t
                      LEFT JOIN usd_rates r ON r.date = t.date AND r.currency = t.currency)
        SELECT sum(n), sum(amount), sum(amount_usd), sum(n) FILTER (WHERE amount_usd IS NULL), sum(fraud),
               to_json(map(list(currency ORDER BY currency), list(amount ORDER BY currency)))
        FROM (SELECT currency, sum(n) AS n, sum(amount) AS amount, sum(amount_usd) AS amount_usd, sum(fraud) AS fraud
              FROM converted GROUP BY currency)""",
    )
    return {
        "rows": int(row[0] or 0),
        "amount": row[1],
        "amount_usd": row[2],
        "unconverted": int(row[3] or 0),
        "fraud": int(row[4] or 0),
        "by_currency": row[5],
    }


def daily_kpis_checks(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published: str
) -> list[CheckOutcome]:
    day = query.partition
    governed = _governed_txn_totals(con, lake, [day])
    groups = _one(
        con,
        f"""SELECT count(*) FROM (SELECT DISTINCT coalesce(CAST(channel AS VARCHAR), 'unknown'),
                          coalesce(CAST(country AS VARCHAR), 'unknown'), upper(CAST(currency AS VARCHAR))
                          FROM {parquet_scan(table_files(lake, "governed", "transactions").files([day]))})""",
    )[0]
    rows, txn_count, amount, amount_usd, unconverted, scored, by_currency = _one(
        con,
        f"""
        SELECT count(*), sum(txn_count), sum(amount), sum(amount_usd), sum(unconverted_txn_count), sum(scored_count),
               (SELECT to_json(map(list(currency ORDER BY currency), list(a ORDER BY currency)))
                FROM (SELECT currency, sum(amount) AS a FROM {published} GROUP BY currency))
        FROM {published}""",
    )
    outcomes = [
        CheckOutcome(
            ROW_COUNT,
            rows == groups and txn_count == governed["rows"],
            f"{rows} group rows holding {txn_count} transactions; governed: {groups} groups, {governed['rows']} rows",
            {
                "mart_rows": int(rows),
                "governed_groups": int(groups),
                "mart_txn_count": int(txn_count or 0),
                "governed_rows": governed["rows"],
            },
        ),
        null_keys_outcome(con, "daily_kpis", published),
        _totals_outcome(
            {"amount": (amount, governed["amount"]), "amount_usd": (amount_usd, governed["amount_usd"])}
            | _per_currency(by_currency, governed["by_currency"])
        ),
        CheckOutcome(
            CONVERTED,
            not unconverted,
            "every amount has a USD rate"
            if not unconverted
            else f"{unconverted} transaction(s) have no USD rate on {day}: materialize fx_rates/governed for {day}",
            {"unconverted_txn_count": int(unconverted or 0)},
        ),
        CheckOutcome(
            SCORED,
            scored == txn_count,
            "every transaction is scored"
            if scored == txn_count
            else f"{txn_count - scored} of {txn_count} transactions have no risk score: materialize "
            f"models/{RISK_MODEL}/scores for {day}",
            {"scored": int(scored or 0), "transactions": int(txn_count or 0)},
            warn_only=True,
        ),
    ]
    return outcomes


def _per_currency(mart_json: str | None, governed_json: str | None) -> dict[str, tuple[float | None, float | None]]:
    import json

    mart = json.loads(mart_json) if mart_json else {}
    governed = json.loads(governed_json) if governed_json else {}
    return {f"amount {c}": (mart.get(c), governed.get(c)) for c in sorted(set(mart) | set(governed))}


def customer_360_checks(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published: str
) -> list[CheckOutcome]:
    days = query.inputs["transactions/governed"]
    governed = _governed_txn_totals(con, lake, days)
    customers = parquet_scan(table_files(lake, "governed", "customers").files())
    txns = parquet_scan(table_files(lake, "governed", "transactions").files(days))
    expected = _one(
        con,
        f"""SELECT count(*) FROM (SELECT CAST(customer_id AS VARCHAR) FROM {customers}
                             UNION SELECT CAST(customer_id AS VARCHAR) FROM {txns})""",
    )[0]
    rows, txn_count, spend, fraud, unconverted = _one(
        con,
        "SELECT count(*), sum(txn_count_30d), sum(spend_30d_usd), sum(fraud_count_30d), "
        f"sum(unconverted_txn_count_30d) FROM {published}",
    )
    return [
        _count_outcome(ROW_COUNT, expected, rows, "customers (CRM ∪ transacting in the window)"),
        null_keys_outcome(con, "customer_360", published),
        _totals_outcome(
            {
                "txn_count_30d": (txn_count, governed["rows"]),
                "fraud_count_30d": (fraud, governed["fraud"]),
                "spend_30d_usd": (spend, governed["amount_usd"] or 0.0),
            }
        ),
        CheckOutcome(
            CONVERTED,
            not unconverted,
            "every amount in the window has a USD rate"
            if not unconverted
            else f"{unconverted} transaction(s) in the window have no USD rate (spend understated): materialize their "
            "fx_rates/governed days",
            {"unconverted_txn_count": int(unconverted or 0)},
        ),
    ]


def market_risk_checks(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published: str
) -> list[CheckOutcome]:
    scan = parquet_scan(table_files(lake, "governed", "market_data").files([query.partition]))
    symbols, bars, volume = _one(
        con, f"SELECT count(DISTINCT symbol), count(*), sum(CAST(volume AS BIGINT)) FROM {scan}"
    )
    rows, mart_bars, mart_volume = _one(con, f"SELECT count(*), sum(bars), sum(volume) FROM {published}")
    return [
        _count_outcome(ROW_COUNT, symbols, rows, "symbols"),
        null_keys_outcome(con, "market_risk", published),
        _totals_outcome({"bars": (mart_bars, bars), "volume": (mart_volume, volume)}),
    ]


def device_health_checks(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published: str
) -> list[CheckOutcome]:
    files = table_files(lake, "governed", "device_telemetry")
    devices = _one(
        con,
        f"SELECT count(DISTINCT device_id) FROM {parquet_scan(files.files(query.inputs['device_telemetry/governed']))}",
    )[0]
    received = _one(con, f"SELECT count(*) FROM {parquet_scan(files.files([query.partition]))}")[0]
    rows, mart_received = _one(con, f"SELECT count(*), sum(messages_received) FROM {published}")
    return [
        _count_outcome(ROW_COUNT, devices, rows, "devices seen in the window"),
        null_keys_outcome(con, "device_health", published),
        _totals_outcome({"messages_received": (mart_received, received)}),
    ]


def source_quality_checks(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published: str
) -> list[CheckOutcome]:
    rows = _one(con, f"SELECT count(*) FROM {published}")[0]
    return [
        _count_outcome(ROW_COUNT, len(query.inputs), rows, "sources"),
        null_keys_outcome(con, "daily_source_quality", published),
    ]


CHECKERS = {
    "daily_kpis": daily_kpis_checks,
    "customer_360": customer_360_checks,
    "market_risk": market_risk_checks,
    "device_health": device_health_checks,
    "daily_source_quality": source_quality_checks,
}


def check_mart(
    con: duckdb.DuckDBPyConnection, lake: Lake, query: MartQuery, published_files: list[str]
) -> list[CheckOutcome]:
    """Run ``query.name``'s checks against the published mart files."""
    return CHECKERS[query.name](con, lake, query, parquet_scan(published_files))
