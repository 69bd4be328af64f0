"""Marts on tiny governed tables whose answers are worked out by hand: FX conversion on a known day,
returns / volatility / drawdown on known closes, and checks that fail when the inputs are wrong."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from lepton_pipelines.analytics import checks, marts
from lepton_pipelines.analytics.engine import connect, table_files

DAY = "2026-03-10"


def _ts(day: str, hour: int) -> pd.Timestamp:
    return pd.Timestamp(f"{day}T{hour:02d}:00:00Z")


def write_transactions(lake, day: str, rows: list[tuple]) -> None:
    frame = pd.DataFrame(
        rows, columns=["txn_id", "customer_id", "amount", "currency", "channel", "country", "status", "is_fraud"]
    )
    frame.insert(2, "event_ts", [_ts(day, 9 + i % 10) for i in range(len(frame))])
    frame["merchant_category"] = "grocery"
    lake.write_table("governed", "transactions", day, frame)


def write_fx(lake, day: str, fixings: dict[str, list[float]]) -> None:
    rows = [(pair, _ts(day, hour), rate) for pair, rates in fixings.items() for hour, rate in enumerate(rates)]
    lake.write_table("governed", "fx_rates", day, pd.DataFrame(rows, columns=["pair", "ts", "rate"]))


def publish(lake, con, query) -> list[str]:
    from lepton_pipelines.lake.store import write_parquet_atomic

    frame = marts.run(con, query)
    write_parquet_atomic(lake.path("marts", query.name, f"date={query.partition}"), frame)
    return table_files(lake, "marts", query.name).files([query.partition])


def test_fx_conversion_on_a_known_day(tmp_lake):
    write_transactions(
        tmp_lake,
        DAY,
        [
            ("T1", "C1", 100.0, "EUR", "web", "DE", "approved", False),
            ("T2", "C1", 50.0, "EUR", "web", "DE", "declined", False),
            ("T3", "C2", 15000.0, "JPY", "mobile", "JP", "approved", True),
            ("T4", "C3", 20.0, "USD", "atm", "US", "approved", False),
        ],
    )
    # EURUSD fixes 1.10 and 1.20 → 1.15 USD per EUR (the direct quote wins over USDEUR);
    # JPY has only USDJPY at 150 and 100 → 1/125 USD per JPY; USD needs no fixing.
    write_fx(tmp_lake, DAY, {"EURUSD": [1.10, 1.20], "USDEUR": [0.5, 0.5], "USDJPY": [150.0, 100.0]})
    con = connect(tmp_lake)
    query = marts.daily_kpis_sql(tmp_lake, DAY)
    kpis = marts.run(con, query).set_index(["channel", "currency"])
    assert kpis.loc[("web", "EUR"), "usd_per_unit"] == pytest.approx(1.15)
    assert kpis.loc[("web", "EUR"), "amount_usd"] == pytest.approx(150.0 * 1.15)
    assert kpis.loc[("web", "EUR"), "decline_rate"] == pytest.approx(0.5)
    assert kpis.loc[("mobile", "JPY"), "amount_usd"] == pytest.approx(15000.0 / 125.0)
    assert kpis.loc[("mobile", "JPY"), "fraud_rate"] == 1.0
    assert kpis.loc[("atm", "USD"), "amount_usd"] == pytest.approx(20.0)
    assert kpis["unconverted_txn_count"].sum() == 0
    assert kpis["high_risk_count"].isna().all()  # no scores for the day: unknown, not zero
    outcomes = {o.name: o for o in checks.check_mart(con, tmp_lake, query, publish(tmp_lake, con, query))}
    assert all(o.passed for n, o in outcomes.items() if n != checks.SCORED), {
        n: o.description for n, o in outcomes.items()
    }
    assert not outcomes[checks.SCORED].passed and outcomes[checks.SCORED].warn_only


def test_a_currency_without_a_rate_is_counted_and_fails_its_check(tmp_lake):
    write_transactions(
        tmp_lake,
        DAY,
        [
            ("T1", "C1", 10.0, "GBP", "web", "GB", "approved", False),
            ("T2", "C1", 5.0, "USD", "web", "GB", "approved", False),
        ],
    )
    write_fx(tmp_lake, DAY, {"EURUSD": [1.1]})
    con = connect(tmp_lake)
    query = marts.daily_kpis_sql(tmp_lake, DAY)
    kpis = marts.run(con, query).set_index("currency")
    assert math.isnan(kpis.loc["GBP", "amount_usd"]) and kpis.loc["GBP", "unconverted_txn_count"] == 1
    outcomes = {o.name: o for o in checks.check_mart(con, tmp_lake, query, publish(tmp_lake, con, query))}
    assert not outcomes[checks.CONVERTED].passed
    assert "1 transaction(s) have no USD rate" in outcomes[checks.CONVERTED].description
    assert outcomes[checks.TOTALS].passed  # the same NULL on both sides: totals still reconcile


def test_checks_catch_a_tampered_mart(tmp_lake):
    write_transactions(
        tmp_lake,
        DAY,
        [
            ("T1", "C1", 10.0, "USD", "web", "US", "approved", False),
            ("T2", "C2", 30.0, "USD", None, "US", "approved", False),
        ],
    )
    write_fx(tmp_lake, DAY, {"EURUSD": [1.1]})
    con = connect(tmp_lake)
    query = marts.daily_kpis_sql(tmp_lake, DAY)
    frame = marts.run(con, query)
    assert "unknown" in set(frame["channel"])  # a NULL channel is a reported group, not a NULL key
    frame = frame[frame["channel"] != "unknown"]  # lose a group, as a wrong join would
    from lepton_pipelines.lake.store import write_parquet_atomic

    write_parquet_atomic(tmp_lake.path("marts", "daily_kpis", f"date={DAY}"), frame)
    published = table_files(tmp_lake, "marts", "daily_kpis").files([DAY])
    outcomes = {o.name: o for o in checks.check_mart(con, tmp_lake, query, published)}
    assert (
        not outcomes[checks.ROW_COUNT].passed and "governed: 2 groups, 2 rows" in outcomes[checks.ROW_COUNT].description
    )
    assert not outcomes[checks.TOTALS].passed and "amount: mart 10" in outcomes[checks.TOTALS].description


def test_market_risk_on_known_closes(tmp_lake):
    closes = [100.0, 110.0, 99.0, 108.9]  # returns +10%, -10%, +10%; peak 110 → trough 99: drawdown -10%
    start = date.fromisoformat(DAY) - timedelta(days=len(closes) - 1)
    for i, close in enumerate(closes):
        day = (start + timedelta(days=i)).isoformat()
        bars = pd.DataFrame(
            {
                "symbol": ["AAA", "AAA"],
                "ts": [_ts(day, 9), _ts(day, 16)],
                "open": [1.0, 1.0],
                "high": [close * 1.01] * 2,
                "low": [close * 0.99] * 2,
                "close": [close * 0.98, close],
                "volume": [5, 7],
            }
        )
        tmp_lake.write_table("governed", "market_data", day, bars)
    con = connect(tmp_lake)
    risk = marts.run(con, marts.market_risk_sql(tmp_lake, DAY)).set_index("symbol").loc["AAA"]
    returns = [0.10, -0.10, 0.10]
    mean = sum(returns) / 3
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert risk["close"] == pytest.approx(108.9)
    assert risk["daily_return"] == pytest.approx(0.10)
    assert risk["volatility_20d"] == pytest.approx(stdev)
    assert risk["volatility_20d_annualized"] == pytest.approx(stdev * math.sqrt(252))
    assert risk["max_drawdown"] == pytest.approx(-0.10)
    assert risk["returns_in_window"] == 3 and risk["volume"] == 12 and risk["bars"] == 2
    assert risk["intraday_volatility"] is None or math.isnan(
        risk["intraday_volatility"]
    )  # one minute return: no deviation


def test_a_missing_governed_partition_names_what_to_materialize(tmp_lake):
    with pytest.raises(marts.MartInputError, match=r"transactions/governed has no partition 2026-03-10 .* materialize"):
        marts.daily_kpis_sql(tmp_lake, DAY)


def test_mart_sql_tolerates_decimal_amounts_and_stored_date_columns(tmp_lake):
    import decimal

    import pyarrow as pa

    from lepton_pipelines.lake.store import write_parquet_atomic

    table = pa.table(
        {
            "txn_id": ["T1", "T2"],
            "customer_id": ["C1", "C2"],
            "event_ts": pa.array([_ts(DAY, 9), _ts(DAY, 10)], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([decimal.Decimal("10.25"), decimal.Decimal("4.75")], pa.decimal128(12, 2)),
            "currency": ["USD", "USD"],
            "merchant_category": ["x", "y"],
            "channel": ["web", "web"],
            "country": ["US", "US"],
            "status": ["approved", "approved"],
            "is_fraud": [False, False],
            "date": pa.array([date.fromisoformat(DAY)] * 2, pa.date32()),
        }
    )
    write_parquet_atomic(tmp_lake.table_dir("governed", "transactions", DAY), table)
    write_fx(tmp_lake, DAY, {"EURUSD": [1.1]})
    kpis = marts.run(connect(tmp_lake), marts.daily_kpis_sql(tmp_lake, DAY))
    assert kpis["amount"].dtype == "float64" and kpis["amount"].sum() == pytest.approx(15.0)
    assert str(kpis["date"].iloc[0]) == DAY
