from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.cleaning import REASON_COLUMN, RULE_COLUMN, build_rules

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_impute_statistic(telemetry, strategy):
    values = [1.0, np.nan, 2.0, 10.0, np.nan]
    (rule,) = build_rules([{"rule": "impute", "columns": ["temperature"], "strategy": strategy}], telemetry)
    outcome = rule.apply(pd.DataFrame({"temperature": values}))
    present = np.array([1.0, 2.0, 10.0])
    fill = present.mean() if strategy == "mean" else np.median(present)
    assert outcome.frame["temperature"].tolist() == [1.0, fill, 2.0, 10.0, fill]
    assert outcome.report["filled"] == {"temperature": 2} and outcome.report["fill_values"]["temperature"] == fill
    assert outcome.lineage["temperature"].startswith(f"imputed: {strategy}")


def test_impute_mean_of_integer_column_stays_integer(telemetry):
    (rule,) = build_rules([{"rule": "impute", "columns": ["battery"], "strategy": "mean"}], telemetry)
    outcome = rule.apply(pd.DataFrame({"battery": pd.array([1, 2, None], "Int64")}))
    assert outcome.frame["battery"].dtype == "Int64" and outcome.frame["battery"].iloc[2] == round(1.5)


def test_impute_all_null_column_stays_null(telemetry):
    (rule,) = build_rules([{"rule": "impute", "columns": ["temperature"], "strategy": "median"}], telemetry)
    outcome = rule.apply(pd.DataFrame({"temperature": [np.nan, np.nan]}))
    assert outcome.frame["temperature"].isna().all()
    assert outcome.report["filled"] == {"temperature": 0} and outcome.report["still_missing"] == {"temperature": 2}


def test_impute_constant(telemetry):
    entry = {"rule": "impute", "columns": ["site"], "strategy": "constant", "value": "unknown"}
    (rule,) = build_rules([entry], telemetry)
    outcome = rule.apply(pd.DataFrame({"site": ["Rome", None]}))
    assert outcome.frame["site"].tolist() == ["Rome", "unknown"]
    assert outcome.report["filled"] == {"site": 1}


def test_impute_constant_timestamp_is_utc(telemetry):
    entry = {"rule": "impute", "columns": ["ts"], "strategy": "constant", "value": "2026-01-01T00:00:00"}
    (rule,) = build_rules([entry], telemetry)
    outcome = rule.apply(pd.DataFrame({"ts": pd.to_datetime(["2026-05-05T00:00Z", None], utc=True)}))
    assert outcome.frame["ts"].iloc[1] == pd.Timestamp("2026-01-01", tz="UTC")


def test_impute_ffill_per_device_in_event_time_order(telemetry):
    ts = pd.to_datetime(
        ["2026-01-01T03:00Z", "2026-01-01T01:00Z", "2026-01-01T02:00Z", "2026-01-01T02:30Z", "2026-01-01T00:00Z"],
        utc=True,
    )
    df = pd.DataFrame(
        {"device_id": ["a", "a", "a", "b", "b"], "ts": ts, "temperature": [np.nan, 10.0, np.nan, np.nan, 7.0]},
        index=[10, 11, 12, 13, 14],
    )
    (rule,) = build_rules(
        [{"rule": "impute", "columns": ["temperature"], "strategy": "ffill", "group_by": ["device_id"]}], telemetry
    )
    outcome = rule.apply(df)
    # a: 01:00=10 → 02:00 gets 10 → 03:00 gets 10; b: 00:00=7 → 02:30 gets 7 (never a's value).
    assert outcome.frame["temperature"].tolist() == [10.0, 10.0, 10.0, 7.0, 7.0]
    assert list(outcome.frame.index) == [10, 11, 12, 13, 14]
    assert outcome.report["filled"] == {"temperature": 3}


def test_drop_if_null_defaults_to_required_columns_and_names_them(telemetry):
    df = pd.DataFrame(
        {"device_id": ["a", None, None, "d"], "seq": pd.array([1, 2, None, None], "Int64"), "site": [None] * 4}
    )
    (rule,) = build_rules([{"rule": "drop_if_null"}], telemetry)
    outcome = rule.apply(df)
    assert outcome.frame["device_id"].tolist() == ["a"]
    assert outcome.removed[REASON_COLUMN].tolist() == [
        "missing required value in device_id",
        "missing required value in device_id, seq",
        "missing required value in seq",
    ]
    assert set(outcome.removed[RULE_COLUMN]) == {"drop_if_null"}
    assert outcome.report["nulls"] == {"device_id": 2, "seq": 2} and outcome.report["rows_dropped"] == 3


def test_drop_if_null_on_empty_frame(telemetry):
    (rule,) = build_rules([{"rule": "drop_if_null", "columns": ["site"]}], telemetry)
    outcome = rule.apply(pd.DataFrame({"site": pd.Series([], dtype="str")}))
    assert len(outcome.frame) == 0 and outcome.removed is None
