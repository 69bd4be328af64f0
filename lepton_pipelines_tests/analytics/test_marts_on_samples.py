"""Each mart, as published by the analytics job on the pipeline's sample output, against an expectation
computed here in plain pandas from the governed tables — not with the marts' SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines_tests.analytics.conftest import SAMPLE_DAYS, check_results, governed, mart, materialization

DAY = SAMPLE_DAYS[-1]


def usd_rates(fx: pd.DataFrame) -> dict[str, float]:
    """The documented rule, written independently: mean fixing of CUSD, else 1/mean(USDC); USD is 1."""
    mean = fx[fx["rate"] > 0].groupby(fx["pair"].str.upper())["rate"].mean()
    rates = {"USD": 1.0}
    for pair, rate in mean.items():
        base, quote = pair[:3], pair[3:]
        if quote == "USD" and base != "USD":
            rates[base] = rate
    for pair, rate in mean.items():
        base, quote = pair[:3], pair[3:]
        if base == "USD" and quote != "USD" and quote not in rates:
            rates[quote] = 1.0 / rate
    return rates


def with_usd(lake, days) -> pd.DataFrame:
    frames = []
    for day in days:
        txns = governed(lake, "transactions", day).copy()
        rates = usd_rates(governed(lake, "fx_rates", day))
        txns["amount_usd"] = txns["amount"] * txns["currency"].map(rates)
        txns["day"] = day
        frames.append(txns)
    return pd.concat(frames, ignore_index=True)


def _read_scores(lake, day) -> pd.DataFrame:
    from lepton_pipelines.lake.store import read_parquet_dir

    return read_parquet_dir(lake.path("models", "transaction_risk", "scores", f"date={day}"))


def test_daily_kpis_match_pandas(sample_lake):
    lake = sample_lake["lake"]
    txns = with_usd(lake, [DAY]).merge(_read_scores(lake, DAY)[["txn_id", "is_high_risk"]], on="txn_id", how="left")
    txns["declined"] = txns["status"] == "declined"
    txns["high_usd"] = txns["amount_usd"].where(txns["is_high_risk"].fillna(False).astype(bool), 0.0)
    expected = (
        txns.groupby(["channel", "country", "currency"])
        .agg(
            txn_count=("txn_id", "size"),
            amount=("amount", "sum"),
            amount_usd=("amount_usd", "sum"),
            declined_count=("declined", "sum"),
            fraud_count=("is_fraud", "sum"),
            high_risk_count=("is_high_risk", "sum"),
            high_risk_amount_usd=("high_usd", "sum"),
        )
        .reset_index()
    )
    actual = mart(lake, "daily_kpis", DAY)
    assert len(actual) == len(expected) > 20
    merged = expected.merge(actual, on=["channel", "country", "currency"], suffixes=("_exp", ""), validate="1:1")
    for column in ("txn_count", "declined_count", "fraud_count", "high_risk_count"):
        assert (merged[column].astype(int) == merged[f"{column}_exp"].astype(int)).all(), column
    for column in ("amount", "amount_usd", "high_risk_amount_usd"):
        np.testing.assert_allclose(
            merged[column].astype(float), merged[f"{column}_exp"].astype(float), rtol=1e-9, err_msg=column
        )
    np.testing.assert_allclose(merged["decline_rate"], merged["declined_count"] / merged["txn_count"])
    assert (merged["unconverted_txn_count"] == 0).all()
    assert set(actual["date"].astype(str)) == {DAY}


def test_daily_kpis_publish_numbers_a_chart_and_passing_checks(sample_lake):
    result = sample_lake["results"][DAY]
    meta = materialization(result, "analytics/daily_kpis").metadata
    txns = governed(sample_lake["lake"], "transactions", DAY)
    assert meta["txn_count"].value == len(txns)
    assert meta["fraud_rate"].value == pytest.approx(txns["is_fraud"].mean())
    assert meta["chart"].value.count("data:image/png;base64,") == 1
    checks = check_results(result, "analytics/daily_kpis")
    assert {
        "row_count_reconciles",
        "no_null_keys",
        "totals_match_governed",
        "all_amounts_converted",
        "risk_scores_complete",
    } <= set(checks)
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items() if not c.passed}


def test_customer_360_matches_pandas(sample_lake):
    lake = sample_lake["lake"]
    txns = with_usd(lake, SAMPLE_DAYS)
    scores = pd.concat([_read_scores(lake, d) for d in SAMPLE_DAYS], ignore_index=True)
    customers = governed(lake, "customers")
    activity = (
        txns.assign(declined=txns["status"] == "declined")
        .groupby("customer_id")
        .agg(
            txn_count_30d=("txn_id", "size"),
            spend_30d_usd=("amount_usd", "sum"),
            fraud_count_30d=("is_fraud", "sum"),
            declined_count_30d=("declined", "sum"),
            channel_count=("channel", "nunique"),
        )
    )
    latest = scores.sort_values(["event_ts", "txn_id"]).groupby("customer_id").last()[["risk_score", "is_high_risk"]]
    ids = sorted(set(customers["customer_id"]) | set(txns["customer_id"]))
    expected = (
        pd.DataFrame({"customer_id": ids})
        .merge(activity, on="customer_id", how="left")
        .merge(latest, on="customer_id", how="left")
        .merge(customers[["customer_id", "risk_rating"]], on="customer_id", how="left")
    )
    expected["in_crm"] = expected["customer_id"].isin(customers["customer_id"])
    expected[["txn_count_30d", "fraud_count_30d"]] = expected[["txn_count_30d", "fraud_count_30d"]].fillna(0)
    expected["spend_30d_usd"] = expected["spend_30d_usd"].fillna(0.0)
    spenders = expected["txn_count_30d"] > 0
    expected["cume"] = expected.loc[spenders, "spend_30d_usd"].rank(method="max", pct=True)

    def label(row) -> str:
        if not row.in_crm:
            return "unregistered"
        if row.fraud_count_30d > 0:
            return "fraud_watch"
        if (pd.notna(row.is_high_risk) and bool(row.is_high_risk)) or row.risk_rating == "high":
            return "elevated_risk"
        if row.txn_count_30d == 0:
            return "dormant"
        if row.cume > 0.9:
            return "high_value"
        return "active"

    expected["segment_label"] = [label(r) for r in expected.itertuples()]
    actual = mart(lake, "customer_360", DAY).merge(expected, on="customer_id", suffixes=("", "_exp"), validate="1:1")
    assert len(actual) == len(ids) == len(mart(lake, "customer_360", DAY))
    assert (actual["txn_count_30d"] == actual["txn_count_30d_exp"]).all()
    assert (actual["fraud_count_30d"] == actual["fraud_count_30d_exp"]).all()
    np.testing.assert_allclose(actual["spend_30d_usd"], actual["spend_30d_usd_exp"], rtol=1e-9)
    np.testing.assert_allclose(
        actual["latest_risk_score"].astype(float), actual["risk_score"].astype(float), rtol=1e-12
    )
    assert (actual["in_crm"] == actual["in_crm_exp"]).all()
    assert (actual["segment_label"] == actual["segment_label_exp"]).all(), actual.loc[
        actual["segment_label"] != actual["segment_label_exp"], ["customer_id", "segment_label", "segment_label_exp"]
    ]
    assert "email" not in actual.columns and "name" not in actual.columns  # no PII in the mart
    # the sample's customer ids beyond the CRM snapshot are reported, not dropped
    assert (~actual["in_crm"]).sum() == len(set(txns["customer_id"]) - set(customers["customer_id"])) > 0


def test_market_risk_matches_pandas(sample_lake):
    lake = sample_lake["lake"]
    bars = pd.concat([governed(lake, "market_data", d).assign(day=d) for d in SAMPLE_DAYS], ignore_index=True)
    closes = bars.sort_values("ts").groupby(["symbol", "day"])["close"].last().unstack("day")
    today = bars[bars["day"] == DAY].sort_values("ts")
    intraday = today.groupby("symbol")["close"].apply(lambda c: np.log(c / c.shift()).std())
    actual = mart(lake, "market_risk", DAY).set_index("symbol")
    assert sorted(actual.index) == sorted(today["symbol"].unique())
    np.testing.assert_allclose(actual["close"], closes.loc[actual.index, DAY])
    np.testing.assert_allclose(
        actual["daily_return"], closes.loc[actual.index, DAY] / closes.loc[actual.index, SAMPLE_DAYS[0]] - 1, rtol=1e-12
    )
    expected_dd = np.minimum(0.0, closes.loc[actual.index, DAY] / closes.loc[actual.index].max(axis=1) - 1)
    np.testing.assert_allclose(actual["max_drawdown"], expected_dd, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(actual["intraday_volatility"], intraday.loc[actual.index], rtol=1e-9)
    assert actual["volatility_20d"].isna().all()  # one return in the window: no sample deviation, NULL not 0
    assert (actual["volume"] == today.groupby("symbol")["volume"].sum().loc[actual.index]).all()


def test_device_health_matches_pandas(sample_lake):
    lake = sample_lake["lake"]
    today = governed(lake, "device_telemetry", DAY)
    window = pd.concat(
        [
            governed(lake, "device_telemetry", d)
            for d in SAMPLE_DAYS
            if lake.table_dir("governed", "device_telemetry", d).exists()
        ]
    )
    actual = mart(lake, "device_health", DAY).set_index("device_id")
    assert sorted(actual.index) == sorted(window["device_id"].unique())
    for device, rows in today.groupby("device_id"):
        seq = rows["seq"].sort_values()
        steps = seq.diff().dropna()
        row = actual.loc[device]
        assert row["messages_received"] == len(rows)
        assert row["messages_expected"] == seq.max() - seq.min() + 1
        assert row["gap_count"] == (steps > 1).sum()
        assert row["messages_missing"] == (steps[steps > 1] - 1).sum()
        assert pd.Timestamp(row["last_seen"]) == window.loc[window["device_id"] == device, "ts"].max()
        assert row["status"] == ("ok" if len(rows) / (seq.max() - seq.min() + 1) >= 0.95 else "degraded")
    assert int(actual["messages_received"].sum()) == len(today)
    assert (actual["gap_count"] > 0).any()  # the simulator drops messages: gaps are found


def test_device_anomaly_rate_is_the_champion_models_flags(sample_lake):
    import io
    import json

    import joblib

    lake = sample_lake["lake"]
    index = json.loads(lake.path("models", "device_anomaly", "registry.json").read_text())
    actual = mart(lake, "device_health", DAY).set_index("device_id")
    champion = index["aliases"].get("production")
    if champion is None:  # the sample's thresholds decide; without a champion the rate is unknown, not 0
        assert actual["anomaly_rate"].isna().all()
        return
    folder = lake.path("models", "device_anomaly", champion)
    model = joblib.load(io.BytesIO((folder / "model.joblib").read_bytes()))
    features = [f["name"] for f in json.loads((folder / "model_card.json").read_text())["feature_schema"]]
    today = governed(lake, "device_telemetry", DAY)
    today["flag"] = model.predict(today[features].astype("float64")) == -1
    expected = today.groupby("device_id")["flag"].agg(["sum", "mean"])
    assert (actual.loc[expected.index, "anomalies"] == expected["sum"]).all()
    np.testing.assert_allclose(actual.loc[expected.index, "anomaly_rate"], expected["mean"])


def test_source_quality_counts_governed_and_quarantined_rows(sample_lake):
    from lepton_pipelines.lake.quarantine import quarantined_rows

    lake = sample_lake["lake"]
    actual = mart(lake, "daily_source_quality", DAY).set_index("source")
    for source, partition in (("transactions", DAY), ("fx_rates", DAY), ("market_data", DAY), ("customers", None)):
        assert actual.loc[source, "governed_rows"] == len(lake.read_table("governed", source, partition))
        assert actual.loc[source, "quarantined_rows"] == quarantined_rows(lake, source, partition)
    assert actual.loc["transactions", "quarantined_rows"] > 0
    row = actual.loc["transactions"]
    assert row["governed_share"] == pytest.approx(
        row["governed_rows"] / (row["governed_rows"] + row["quarantined_rows"])
    )


def test_every_mart_check_passed_on_the_samples(sample_lake):
    for day, result in sample_lake["results"].items():
        for asset in (
            "analytics/daily_kpis",
            "analytics/customer_360",
            "analytics/market_risk",
            "analytics/device_health",
            "analytics/daily_source_quality",
            "models/transaction_risk/scores",
        ):
            checks = check_results(result, asset)
            assert checks, f"{asset} {day}: no checks ran"
            failed = {k: c.description for k, c in checks.items() if not c.passed}
            assert not failed, f"{asset} {day}: {failed}"
