from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.cleaning import REASON_COLUMN, RULE_COLUMN, build_rules

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def readings() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    temps = rng.normal(20, 2, 60)
    temps[[5, 40]] = [95.0, -60.0]
    return pd.DataFrame(
        {
            "device_id": np.repeat(["a", "b", "c"], 20),
            "temperature": temps,
            "battery": pd.array(rng.integers(0, 120, 60), "Int64"),
        }
    )


@pytest.mark.parametrize("action", ["drop", "clip", "null"])
def test_valid_range_actions(telemetry, action):
    df = pd.DataFrame({"battery": pd.array([-5, 0, 50, 100, 130, None], "Int64")})
    (rule,) = build_rules(
        [{"rule": "valid_range", "column": "battery", "min": 0, "max": 100, "action": action}], telemetry
    )
    outcome = rule.apply(df)
    assert outcome.report["below_min"] == 1 and outcome.report["above_max"] == 1
    result = outcome.frame["battery"]
    if action == "drop":
        assert result.tolist()[:3] == [0, 50, 100] and len(result) == 4
        assert outcome.removed[REASON_COLUMN].tolist() == [
            "battery=-5 below minimum 0",
            "battery=130 above maximum 100",
        ]
        assert set(outcome.removed[RULE_COLUMN]) == {"valid_range"}
    elif action == "clip":
        assert result.dtype == "Int64"
        assert result.tolist()[:5] == [0, 0, 50, 100, 100] and pd.isna(result.iloc[5])
        assert outcome.lineage == {"battery": "clipped to [0, 100]"} and outcome.removed is None
    else:
        assert result.isna().tolist() == [True, False, False, False, True, True]


def test_valid_range_with_one_bound_on_all_null_column(telemetry):
    (rule,) = build_rules([{"rule": "valid_range", "column": "temperature", "max": 1e6}], telemetry)
    outcome = rule.apply(pd.DataFrame({"temperature": [np.nan, np.nan]}))
    assert len(outcome.frame) == 2 and outcome.removed is None and outcome.report["above_max"] == 0


def test_iqr_flags_values_outside_tukey_fences(telemetry, readings):
    (rule,) = build_rules([{"rule": "outliers", "column": "temperature"}], telemetry)
    outcome = rule.apply(readings)
    q1, q3 = np.percentile(readings["temperature"], [25, 75])
    low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    expected = (readings["temperature"] < low) | (readings["temperature"] > high)
    assert outcome.frame["temperature_outlier"].tolist() == expected.tolist()
    assert outcome.report["lower"] == pytest.approx(low) and outcome.report["upper"] == pytest.approx(high)
    assert outcome.report["outliers"] == int(expected.sum()) >= 2
    assert outcome.frame["temperature"].equals(readings["temperature"])


def test_zscore_per_group_drops_with_reason(telemetry, readings):
    entry = {
        "rule": "outliers",
        "column": "temperature",
        "method": "zscore",
        "threshold": 3.0,
        "action": "drop",
        "group_by": ["device_id"],
    }
    (rule,) = build_rules([entry], telemetry)
    outcome = rule.apply(readings)
    expected = np.zeros(len(readings), dtype=bool)
    for _device, rows in readings.groupby("device_id").groups.items():
        values = readings.loc[rows, "temperature"].to_numpy()
        z = np.abs(values - values.mean()) / values.std(ddof=1)
        expected[np.asarray(rows)] = z > 3.0
    assert sorted(outcome.removed.index) == sorted(np.flatnonzero(expected))
    assert len(outcome.frame) + len(outcome.removed) == len(readings)
    assert outcome.report["groups"] == 3
    assert all(
        r.startswith("temperature=") and "zscore bounds" in r and "per device_id" in r
        for r in outcome.removed[REASON_COLUMN]
    )


def test_iqr_clip_per_group_keeps_integer_dtype(telemetry):
    df = pd.DataFrame(
        {"device_id": ["a"] * 5 + ["b"] * 5, "battery": pd.array([10, 11, 12, 13, 90, 50, 51, 52, 53, 1], "Int64")}
    )
    entry = {"rule": "outliers", "column": "battery", "action": "clip", "group_by": ["device_id"]}
    (rule,) = build_rules([entry], telemetry)
    outcome = rule.apply(df)
    expected = []
    for device in ["a", "b"]:
        values = df.loc[df.device_id == device, "battery"].to_numpy(dtype=float)
        q1, q3 = np.percentile(values, [25, 75])
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        expected += np.clip(values, np.ceil(low), np.floor(high)).astype(int).tolist()
    assert outcome.frame["battery"].dtype == "Int64"
    assert outcome.frame["battery"].tolist() == expected
    assert outcome.frame["battery"].tolist() != df["battery"].tolist()


@pytest.mark.parametrize("method", ["iqr", "zscore"])
def test_single_value_all_null_and_empty_have_no_outliers(telemetry, method):
    (rule,) = build_rules(
        [{"rule": "outliers", "column": "temperature", "method": method, "action": "drop"}], telemetry
    )
    for values in ([21.0], [np.nan, np.nan], [], [5.0, 5.0, 5.0]):
        outcome = rule.apply(pd.DataFrame({"temperature": pd.Series(values, dtype="float64")}))
        assert len(outcome.frame) == len(values) and outcome.removed is None and outcome.report["outliers"] == 0
