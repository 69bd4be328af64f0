from __future__ import annotations

import pandas as pd
import pytest

from lepton_pipelines.cleaning import (
    REASON_COLUMN,
    RULE_COLUMN,
    CleaningConfigError,
    build_rules,
    coerce_to_schema,
    run_cleaning,
)
from lepton_pipelines.cleaning.dedup import Deduplicate
from lepton_pipelines.cleaning.ranges import ValidRange

pytestmark = pytest.mark.timeout(60)

RULES = [
    {"rule": "trim"},
    {"rule": "normalize_case", "columns": ["site"]},
    {"rule": "replace_values", "values": {"site": {"n/a": None}}},
    {"rule": "drop_if_null"},
    {"rule": "deduplicate"},
    {"rule": "valid_range", "column": "battery", "min": 0, "max": 100, "action": "drop"},
    {"rule": "valid_range", "column": "temperature", "min": -40, "max": 60, "action": "clip"},
    {"rule": "impute", "columns": ["temperature"], "strategy": "ffill", "group_by": ["device_id"]},
    {"rule": "outliers", "column": "temperature", "action": "flag"},
]


def _landed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": [" d1", "d1", "d2", None, "d2", "d3", "d3"],
            "seq": ["1", "1", "1", "4", "2", "1", "2"],
            "ts": [
                "2026-01-01T10:00Z",
                "2026-01-01T11:00Z",
                "2026-01-01T10:00Z",
                "2026-01-01T10:00Z",
                "2026-01-01T12:00Z",
                "2026-01-01T10:00:00Z",
                "2026-01-01T10:30:00+00:00",
            ],
            "temperature": ["20.5", "21", "abc", "19", "", "75", "18"],
            "battery": ["90", "91", "50", "50", "140", "10", "11"],
            "site": ["Berlin ", "BERLIN", "N/A", "x", "rome", "Rome", "ROME"],
            "active": ["yes", "no", "true", "1", "0", "f", "T"],
            "_source_file": ["f1.csv"] * 7,
            "_source_line": list(range(2, 9)),
        }
    )


def test_pipeline_reconciles_and_keeps_every_removed_row(telemetry):
    typed = coerce_to_schema(_landed(), telemetry)
    assert typed.parse_failures == {"temperature": 1}
    result = run_cleaning(typed.frame, build_rules(RULES, telemetry))

    recon = result.reconciliation()
    assert recon == {"input_rows": 7, "output_rows": 4, "duplicates_removed": 1, "rows_dropped": 2, "balanced": True}
    # The null device (drop_if_null), the older d1/1 (deduplicate), battery 140 (valid_range).
    by_rule = result.removed.groupby(RULE_COLUMN)["_source_line"].apply(sorted).to_dict()
    assert by_rule == {"drop_if_null": [5], "deduplicate": [2], "valid_range": [6]}
    assert (
        result.removed.loc[result.removed[RULE_COLUMN] == "valid_range", REASON_COLUMN].item()
        == "battery=140 above maximum 100"
    )

    frame = result.frame.set_index("_source_line")
    assert frame.loc[3, "site"] == "berlin" and frame.loc[3, "device_id"] == "d1"
    assert pd.isna(frame.loc[4, "site"])  # "N/A" → lower "n/a" → null
    assert frame.loc[7, "temperature"] == 60.0  # clipped
    assert pd.isna(frame.loc[4, "temperature"])  # d2's only reading failed to parse: stays NaN
    assert "temperature_outlier" in result.frame.columns
    assert result.lineage["temperature"] == [
        "valid_range: clipped to [-40, 60]",
        "impute: imputed: forward fill within device_id ordered by ts",
    ]
    assert list(result.reports) == [f"{i}_{entry['rule']}" for i, entry in enumerate(RULES)]
    assert result.reports["4_deduplicate"]["duplicates_removed"] == 1


def test_a_consumed_input_gives_the_same_result_and_is_released(telemetry):
    """consume=True (the clean step hands its landed partition over): the same cleaned frame, removed rows
    and _replaced values as without it, and the input keeps no column (its memory is freed)."""
    rules = build_rules(RULES, telemetry)
    kept = run_cleaning(coerce_to_schema(_landed(), telemetry).frame, rules)
    handed = coerce_to_schema(_landed(), telemetry).frame
    consumed = run_cleaning(handed, rules, consume=True)
    pd.testing.assert_frame_equal(consumed.frame, kept.frame)
    pd.testing.assert_frame_equal(consumed.removed, kept.removed)
    assert consumed.frame["_replaced"].notna().any()
    assert list(handed.columns) == []


def test_pipeline_without_rules_or_rows(telemetry):
    df = coerce_to_schema(_landed(), telemetry).frame
    assert run_cleaning(df, []).reconciliation()["output_rows"] == 7
    empty = run_cleaning(df.iloc[0:0], build_rules(RULES, telemetry))
    assert empty.reconciliation() == {
        "input_rows": 0,
        "output_rows": 0,
        "duplicates_removed": 0,
        "rows_dropped": 0,
        "balanced": True,
    }
    assert {REASON_COLUMN, RULE_COLUMN} <= set(empty.removed.columns)


def test_a_rule_that_loses_rows_stops_the_run(telemetry):
    class Leaky(ValidRange):
        def apply(self, df, alive=None):
            outcome = super().apply(df, alive=alive)
            outcome.removed = None  # forgets to hand back what it dropped
            return outcome

    rule = Leaky(ValidRange.Config(column="battery", max=10), telemetry)
    df = pd.DataFrame({"battery": pd.array([5, 50], "Int64")})
    with pytest.raises(RuntimeError, match="valid_range.*2 in, 1 kept, 0 removed"):
        run_cleaning(df, [rule])


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"rule": "trim", "colums": ["site"]}, r"cleaning\[0\] \(trim\)\.colums: Extra inputs are not permitted"),
        ({"rule": "valid_range", "column": "battery", "min": 10, "max": 1}, r"min \(10\) is greater than max \(1\)"),
        ({"rule": "valid_range", "column": "battery"}, "at least one of min, max"),
        (
            {"rule": "valid_range", "column": "voltage", "max": 1},
            r"column 'voltage' is not in the schema of 'telemetry'",
        ),
        ({"rule": "outliers", "column": "site"}, "declared string; this rule works on integer or float"),
        ({"rule": "outliers", "column": "temperature", "method": "mad"}, r"method: Input should be 'iqr' or 'zscore'"),
        ({"rule": "normalize_case", "columns": ["battery"]}, "declared integer"),
        ({"rule": "impute", "columns": ["temperature"], "strategy": "constant"}, "strategy constant needs `value:`"),
        (
            {"rule": "impute", "columns": ["battery"], "strategy": "constant", "value": "high"},
            "does not fit integer column 'battery'",
        ),
        ({"rule": "deduplicate", "keys": ["nope"]}, "column 'nope' is not in the schema"),
        ({"rule": "replace_values", "values": {"battery": {"N/A": None}}}, "value 'N/A' does not fit integer column"),
        ({"rule": "dedupe"}, "'dedupe' is not a cleaning rule; allowed: deduplicate, drop_if_null"),
    ],
)
def test_bad_configs_are_reported_with_entry_and_field(telemetry, entry, message):
    with pytest.raises(CleaningConfigError, match=message):
        build_rules([entry], telemetry)


def test_all_problems_are_reported_together(telemetry):
    with pytest.raises(CleaningConfigError) as caught:
        build_rules([{"rule": "trim", "columns": ["x"]}, {"rule": "deduplicate", "keys": ["y"]}], telemetry)
    assert len(caught.value.problems) == 2


def test_deduplicate_needs_a_key_when_the_table_has_none(telemetry):
    keyless = type(telemetry)(source="logs", columns=telemetry.columns)
    assert Deduplicate(Deduplicate.Config(), keyless).validate_against(keyless) == [
        "keys: 'logs' declares no primary_key; list the key columns under `keys:`"
    ]
