from __future__ import annotations

import pandas as pd
import pytest

from lepton_pipelines.cleaning import REASON_COLUMN, RULE_COLUMN, ColumnInfo, TableInfo, build_rules

pytestmark = pytest.mark.timeout(60)


def _ts(*values: str) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def test_keeps_latest_event_time_per_primary_key(telemetry):
    df = pd.DataFrame(
        {
            "device_id": ["a", "a", "b", "a", "c"],
            "seq": [1, 1, 1, 1, 1],
            "ts": _ts(
                "2026-01-01T10:00Z", "2026-01-01T12:00Z", "2026-01-01T10:00Z", "2026-01-01T11:00Z", "2026-01-01T09:00Z"
            ),
            "temperature": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    (rule,) = build_rules([{"rule": "deduplicate"}], telemetry)
    outcome = rule.apply(df)
    assert sorted(outcome.frame["temperature"]) == [2.0, 3.0, 5.0]  # a's 12:00 version survives
    assert outcome.duplicates_removed == 2
    assert sorted(outcome.removed["temperature"]) == [1.0, 4.0]
    assert set(outcome.removed[REASON_COLUMN]) == {"superseded duplicate of device_id=a, seq=1"}
    assert set(outcome.removed[RULE_COLUMN]) == {"deduplicate"}
    assert outcome.report["keys_with_duplicates"] == 1
    assert list(outcome.frame.index) == [1, 2, 4]  # survivors keep their frame order


def test_ties_keep_the_last_landed_row_regardless_of_frame_order(telemetry):
    same = "2026-01-01T10:00Z"
    df = pd.DataFrame(
        {
            "device_id": ["a", "a", "a"],
            "seq": [7, 7, 7],
            "ts": _ts(same, same, same),
            "temperature": [30.0, 10.0, 20.0],
            "_source_file": ["2026/b.csv", "2026/a.csv", "2026/a.csv"],
            "_source_line": [2, 9, 3],
        }
    )
    (rule,) = build_rules([{"rule": "deduplicate"}], telemetry)
    first = rule.apply(df)
    shuffled = rule.apply(df.iloc[[2, 0, 1]])
    # Landing order: a.csv:3, a.csv:9, b.csv:2 → b.csv line 2 is the last landed.
    assert first.frame["temperature"].tolist() == [30.0] == shuffled.frame["temperature"].tolist()


def test_missing_event_time_loses_and_null_keys_are_left_alone(telemetry):
    df = pd.DataFrame(
        {
            "device_id": ["a", "a", None, None],
            "seq": [1, 1, 5, 5],
            "ts": _ts("2026-01-01T10:00Z", None, "2026-01-01T10:00Z", "2026-01-01T10:00Z"),
            "temperature": [1.0, 2.0, 3.0, 4.0],
        }
    )
    (rule,) = build_rules([{"rule": "deduplicate"}], telemetry)
    outcome = rule.apply(df)
    assert outcome.frame["temperature"].tolist() == [1.0, 3.0, 4.0]
    assert outcome.duplicates_removed == 1


def test_explicit_keys_without_event_time_keep_the_last_in_frame_order(telemetry):
    df = pd.DataFrame({"site": ["x", "y", "x"], "temperature": [1.0, 2.0, 3.0]})
    without_event_time = TableInfo(source="t", columns=telemetry.columns)
    (rule,) = build_rules([{"rule": "deduplicate", "keys": ["site"]}], without_event_time)
    outcome = rule.apply(df)
    assert outcome.frame["temperature"].tolist() == [2.0, 3.0]
    assert outcome.removed[REASON_COLUMN].tolist() == ["superseded duplicate of site=x"]


def test_no_duplicates_and_empty_frame(telemetry):
    (rule,) = build_rules([{"rule": "deduplicate"}], telemetry)
    df = pd.DataFrame({"device_id": ["a", "b"], "seq": [1, 1], "ts": _ts("2026-01-01T10:00Z", "2026-01-01T10:00Z")})
    outcome = rule.apply(df)
    assert outcome.removed is None and outcome.duplicates_removed == 0 and len(outcome.frame) == 2
    assert len(rule.apply(df.iloc[0:0]).frame) == 0


def test_event_time_that_is_part_of_the_key_is_allowed():
    """Market bars are keyed by (symbol, ts) and ordered by ts: the same column twice must not break sorting."""
    table = TableInfo(
        source="bars",
        columns=(ColumnInfo("symbol", "string"), ColumnInfo("ts", "timestamp"), ColumnInfo("close", "float")),
        primary_key=("symbol", "ts"),
        event_time="ts",
    )
    df = pd.DataFrame(
        {
            "symbol": ["A", "A", "A"],
            "ts": _ts("2026-11-25T00:00Z", "2026-11-25T00:01Z", "2026-11-25T00:00Z"),
            "close": [1.0, 2.0, 1.5],
        }
    )
    (rule,) = build_rules([{"rule": "deduplicate"}], table)
    outcome = rule.apply(df)
    assert outcome.duplicates_removed == 1
    assert outcome.frame["close"].tolist() == [2.0, 1.5]  # the later-landed copy of (A, 00:00) wins
