from __future__ import annotations

import pandas as pd
import pytest

from lepton_pipelines.cleaning import build_rules

pytestmark = pytest.mark.timeout(60)


def test_trim_defaults_to_string_columns_and_blank_becomes_null(telemetry):
    df = pd.DataFrame(
        {"device_id": [" d1", "d2 ", "d3"], "site": ["  ", None, " Berlin "], "battery": pd.array([1, 2, 3], "Int64")}
    )
    (rule,) = build_rules([{"rule": "trim"}], telemetry)
    outcome = rule.apply(df)
    assert outcome.frame["device_id"].tolist() == ["d1", "d2", "d3"]
    assert pd.isna(outcome.frame["site"].iloc[0]) and pd.isna(outcome.frame["site"].iloc[1])
    assert outcome.frame["site"].iloc[2] == "Berlin"
    assert outcome.report["trimmed"] == {"device_id": 2, "site": 2}
    assert outcome.report["blank_to_null"] == {"device_id": 0, "site": 1}
    assert df["device_id"].iloc[0] == " d1"  # the input frame is not modified
    assert "battery" not in outcome.lineage


def test_trim_can_keep_blanks(telemetry):
    (rule,) = build_rules([{"rule": "trim", "columns": ["site"], "empty_to_null": False}], telemetry)
    outcome = rule.apply(pd.DataFrame({"site": ["  ", "a "]}))
    assert outcome.frame["site"].tolist() == ["", "a"]


def test_normalize_case(telemetry):
    (rule,) = build_rules([{"rule": "normalize_case", "columns": ["site"], "case": "title"}], telemetry)
    outcome = rule.apply(pd.DataFrame({"site": ["new york", "BERLIN", "Paris", None]}))
    assert outcome.frame["site"].iloc[:3].tolist() == ["New York", "Berlin", "Paris"]
    assert pd.isna(outcome.frame["site"].iloc[3])
    assert outcome.report["changed"] == {"site": 2}
    assert outcome.lineage == {"site": "case normalized: title"}


def test_replace_values_maps_sentinels_to_null(telemetry):
    entry = {"rule": "replace_values", "values": {"site": {"N/A": None, "bln": "Berlin"}, "temperature": {-999: None}}}
    (rule,) = build_rules([entry], telemetry)
    df = pd.DataFrame({"site": ["N/A", "bln", "Rome"], "temperature": [-999.0, 21.5, -999.0]})
    outcome = rule.apply(df)
    assert pd.isna(outcome.frame["site"].iloc[0]) and outcome.frame["site"].iloc[1:].tolist() == ["Berlin", "Rome"]
    assert outcome.frame["temperature"].isna().tolist() == [True, False, True]
    assert outcome.report["replaced"] == {"site": 2, "temperature": 2}


def test_rules_on_an_empty_frame(telemetry):
    df = pd.DataFrame({"site": pd.Series([], dtype="str"), "device_id": pd.Series([], dtype="str")})
    for entry in ({"rule": "trim"}, {"rule": "normalize_case", "columns": ["site"]}):
        (rule,) = build_rules([entry], telemetry)
        assert len(rule.apply(df).frame) == 0
