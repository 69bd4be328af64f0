"""Denoising is visible: every value a rule nulls, clips or fills keeps its original in ``_replaced``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.cleaning import build_rules, run_cleaning
from lepton_pipelines.cleaning.base import REPLACED_COLUMN

pytestmark = pytest.mark.timeout(60)


def _readings() -> pd.DataFrame:
    ts = pd.to_datetime(pd.Series([f"2026-01-01T10:0{i}Z" for i in range(6)]), utc=True)
    return pd.DataFrame(
        {
            "device_id": pd.Series(["d1", "d1", "d1", "d2", "d2", "d2"], dtype="str"),
            "seq": pd.array([1, 2, 3, 1, 2, 3], dtype="Int64"),
            "ts": ts,
            "temperature": [21.9, 500.0, 22.1, 18.0, None, 19.0],
            "battery": pd.array([90, 140, 80, -5, 70, 60], dtype="Int64"),
        }
    )


def replaced(result) -> list[dict | None]:
    return [None if pd.isna(text) else json.loads(text) for text in result.frame[REPLACED_COLUMN]]


def test_nulled_then_forward_filled_keeps_the_original_and_the_rule_chain(telemetry):
    rules = build_rules(
        [
            {"rule": "valid_range", "column": "temperature", "min": -40, "max": 85, "action": "null"},
            {"rule": "valid_range", "column": "battery", "min": 0, "max": 100, "action": "clip"},
            {"rule": "impute", "columns": ["temperature"], "strategy": "ffill", "group_by": ["device_id"]},
        ],
        telemetry,
    )
    result = run_cleaning(_readings(), rules)

    assert result.frame["temperature"].tolist() == [21.9, 21.9, 22.1, 18.0, 18.0, 19.0]
    assert replaced(result) == [
        None,
        {
            "temperature": {
                "original": 500.0,
                "rule": "valid_range -> impute",
                "action": "filled",
                "steps": [{"rule": "valid_range", "action": "nulled"}, {"rule": "impute", "action": "filled"}],
            },
            "battery": {"original": 140, "rule": "valid_range", "action": "clipped"},
        },
        None,
        {"battery": {"original": -5, "rule": "valid_range", "action": "clipped"}},
        {"temperature": {"original": None, "rule": "impute", "action": "filled"}},  # missing as landed
        None,
    ]
    assert result.frame["battery"].tolist() == [90, 100, 80, 0, 70, 60]


def test_replacements_follow_rows_through_removals_and_outlier_clipping(telemetry):
    frame = pd.DataFrame(
        {
            "device_id": pd.array(["a"] * 8 + [None], dtype="str"),
            "seq": pd.array(list(range(9)), dtype="Int64"),
            "ts": pd.to_datetime([f"2026-01-01T10:0{i}Z" for i in range(9)], utc=True),
            "temperature": [20.0, 20.5, 21.0, 20.8, 90.0, 20.2, 20.9, 20.4, 500.0],
            "battery": pd.array([50] * 9, dtype="Int64"),
        },
        index=[10, 11, 12, 13, 14, 15, 16, 16, 17],
    )  # a duplicate label: the pipeline must not mix rows up
    rules = build_rules(
        [
            {"rule": "drop_if_null", "columns": ["device_id"]},  # removes the 500 row (masked)
            {
                "rule": "outliers",
                "column": "temperature",
                "method": "iqr",
                "threshold": 1.5,
                "action": "clip",
                "group_by": ["device_id"],
            },
        ],
        telemetry,
    )
    result = run_cleaning(frame, rules)

    assert len(result.frame) == 8
    changes = {row: value for row, value in enumerate(replaced(result)) if value}
    assert list(changes) == [4]
    assert changes[4]["temperature"]["original"] == 90.0 and changes[4]["temperature"]["rule"] == "outliers"
    assert changes[4]["temperature"]["action"] == "clipped"
    assert result.frame["temperature"].iloc[4] < 90.0


def test_no_replacement_means_an_all_null_text_column(telemetry):
    rules = build_rules(
        [{"rule": "valid_range", "column": "temperature", "min": -40, "max": 85, "action": "null"}], telemetry
    )
    clean = _readings().assign(temperature=[20.0] * 6)
    result = run_cleaning(clean, rules)
    assert result.frame[REPLACED_COLUMN].isna().all() and len(result.frame) == 6
    assert REPLACED_COLUMN not in clean.columns  # the caller's frame is untouched


def test_building_replaced_scales_with_changed_rows_only(telemetry):
    """A million rows with a hundred changes: the JSON is built for those hundred rows only."""
    n = 1_000_000
    temperature = np.full(n, 20.0)
    temperature[::10_000] = 999.0
    frame = pd.DataFrame(
        {
            "device_id": pd.Series(np.where(np.arange(n) % 2, "a", "b"), dtype="str"),
            "seq": pd.array(np.arange(n), dtype="Int64"),
            "temperature": temperature,
        }
    )
    rules = build_rules([{"rule": "valid_range", "column": "temperature", "max": 85, "action": "null"}], telemetry)
    result = run_cleaning(frame, rules)
    marked = result.frame[REPLACED_COLUMN].notna()
    assert int(marked.sum()) == 100 and marked.to_numpy()[::10_000].all()
    assert json.loads(result.frame[REPLACED_COLUMN].iloc[10_000])["temperature"]["original"] == 999.0
