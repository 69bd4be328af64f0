"""Rules that take the pipeline's ``alive`` mask must behave exactly as if every earlier removal had been
applied to the frame: same survivors, same removed rows and reasons, same reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.cleaning import RULE_COLUMN, build_rules, run_cleaning
from lepton_pipelines.cleaning.base import REPLACED_COLUMN
from lepton_pipelines.cleaning.support import duplicated_rows

pytestmark = pytest.mark.timeout(60)

RULES = [
    {"rule": "drop_if_null", "columns": ["device_id", "battery"]},
    {"rule": "deduplicate"},
    {"rule": "valid_range", "column": "battery", "min": 0, "max": 100, "action": "drop"},
    {"rule": "valid_range", "column": "temperature", "max": 50, "action": "clip"},
    {"rule": "impute", "columns": ["site"], "strategy": "constant", "value": "unknown"},
    {"rule": "impute", "columns": ["temperature"], "strategy": "mean"},  # needs the filtered frame
    {"rule": "deduplicate", "keys": ["site"]},
]


def _frame() -> pd.DataFrame:
    ts = pd.to_datetime(
        pd.Series(
            [
                "2026-01-01T10:00Z",
                "2026-01-01T12:00Z",
                "2026-01-01T10:00Z",
                "2026-01-01T11:00Z",
                "2026-01-01T09:00Z",
                "2026-01-01T09:30Z",
                "2026-01-01T08:00Z",
                "2026-01-01T08:00Z",
            ]
        ),
        utc=True,
    )
    return pd.DataFrame(
        {
            # a/1: the latest version (12:00) has no battery, so drop_if_null removes it and the 10:00
            # version must survive deduplication — it has no remaining rival.
            "device_id": pd.Series(["a", "a", "b", "b", None, "c", "d", "d"], dtype="str"),
            "seq": pd.array([1, 1, 1, 1, 1, 1, 1, 1], dtype="Int64"),
            "ts": ts,
            # Row 4 (null device, battery 500) is removed by drop_if_null: valid_range must not see it again.
            "battery": pd.array([50, None, 120, 60, 500, 170, 80, 90], dtype="Int64"),
            "temperature": [20.0, 99.0, None, 30.0, 10.0, 80.0, None, 25.0],
            "site": pd.Series(["x", None, None, None, None, None, "z", "z"], dtype="str"),
        }
    )


def _one_rule_at_a_time(df: pd.DataFrame, rules) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The reference: every rule applied on its own to the frame the previous rule returned."""
    removed, reports = [], {}
    for index, rule in enumerate(rules):
        outcome = rule.apply(df)
        assert outcome.keep is None  # called without `alive`, a rule returns its filtered frame
        df = outcome.frame
        reports[f"{index}_{rule.name}"] = outcome.report
        if outcome.removed is not None:
            removed.append(outcome.removed)
    return df, pd.concat(removed), reports


def test_masked_run_equals_applying_each_removal_at_once(telemetry):
    rules = build_rules(RULES, telemetry)
    assert [r.takes_alive_mask for r in rules] == [True, True, True, True, True, False, True]
    result = run_cleaning(_frame(), rules)
    frame, removed, reports = _one_rule_at_a_time(_frame(), rules)

    pd.testing.assert_frame_equal(result.frame.drop(columns=[REPLACED_COLUMN]), frame)
    pd.testing.assert_frame_equal(result.removed, removed)
    # Only alive rows' replacements are kept: rows 1 (temperature 99) and 5 (80) would be clipped but
    # were removed before; row 3's missing site was filled.
    assert [None if pd.isna(v) else v for v in result.frame[REPLACED_COLUMN]] == [
        None,
        '{"site":{"original":null,"rule":"impute","action":"filled"}}',
        None,
    ]
    assert result.reports == reports
    assert result.reconciliation()["balanced"]
    # The case the mask must get right: a/1's 12:00 version was dropped for its null battery, so the
    # 10:00 version is kept and is no duplicate; b/1's 10:00 version (battery 120) loses to 11:00 before
    # valid_range could see it; d/1 ties on time and the later row wins.
    assert result.frame.index.tolist() == [0, 3, 7]
    by_rule = {rule: sorted(rows.index) for rule, rows in result.removed.groupby(RULE_COLUMN)}
    assert by_rule == {"drop_if_null": [1, 4], "deduplicate": [2, 6], "valid_range": [5]}
    assert result.reports["4_impute"]["filled"] == {"site": 1}  # only row 3 of the survivors was missing
    assert result.reports["1_deduplicate"]["keys_with_duplicates"] == 2  # b/1 and d/1, not a/1


def test_masked_rule_reports_count_only_rows_still_alive(telemetry):
    """Given a mask, removed rows are neither counted, removed again, nor filled."""
    drop, valid, impute = build_rules([RULES[0], RULES[2], RULES[4]], telemetry)
    df = _frame()
    alive = np.array([True, True, True, True, False, True, True, False])
    nulls = drop.apply(df, alive=alive)
    assert nulls.report["rows_dropped"] == 1 and nulls.keep.tolist() == [True, False] + [True] * 6
    assert len(nulls.frame) == len(df)  # unfiltered: the pipeline filters once
    ranged = valid.apply(df, alive=alive)
    assert ranged.report["above_max"] == 2 and ranged.removed.index.tolist() == [2, 5]  # not row 4 (battery 500)
    filled = impute.apply(df, alive=alive)
    assert filled.report["filled"] == {"site": 4} and filled.keep is None  # rows 1, 2, 3, 5; not row 4


def test_deduplicate_breaks_ties_by_path_even_when_categories_are_not_sorted(telemetry):
    same = pd.to_datetime(pd.Series(["2026-01-01T10:00Z"] * 2), utc=True)
    df = pd.DataFrame(
        {
            "device_id": ["a", "a"],
            "seq": [7, 7],
            "ts": same,
            "temperature": [1.0, 2.0],
            "_source_file": pd.Categorical(["b.csv", "a.csv"], categories=["b.csv", "a.csv"]),
            "_source_line": [2, 9],
        }
    )
    (rule,) = build_rules([{"rule": "deduplicate"}], telemetry)
    outcome = rule.apply(df)
    assert outcome.frame["temperature"].tolist() == [1.0]  # b.csv landed after a.csv
    assert isinstance(outcome.frame["_source_file"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("keep", ["first", "last", False])
def test_duplicated_rows_matches_pandas_including_null_keys(keep):
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "a": pd.Series(rng.choice(["x", "y", None], 60), dtype="str"),
            "b": pd.array(rng.choice([1, 2, None], 60), dtype="Int64"),
            "c": pd.Categorical(rng.choice(["p", "q"], 60)),
        }
    )
    for keys in (["a"], ["a", "b"], ["c", "b", "a"]):
        expected = df.duplicated(subset=keys, keep=keep).to_numpy()
        assert duplicated_rows(df, keys, keep=keep).tolist() == expected.tolist()


@pytest.mark.parametrize("keep", ["first", "last", False])
def test_duplicated_rows_on_a_chunked_text_key_matches_pandas(keep):
    """One text key (the sorting path) over an Arrow column of several chunks, as a Parquet read gives:
    runs of equal keys crossing chunk boundaries, nulls, and keys out of order."""
    import pyarrow as pa

    rng = np.random.default_rng(11)
    values = [None if v == "-" else v for v in rng.choice(["k1", "k2", "k3", "k10", "-", " k1"], 3000)]
    chunks = [pa.array(values[i : i + 700], pa.large_string()) for i in range(0, 3000, 700)]
    df = pa.table({"k": pa.chunked_array(chunks)}).to_pandas()
    assert df["k"].array.__arrow_array__().num_chunks == len(chunks)
    expected = df.duplicated(subset=["k"], keep=keep).to_numpy()
    assert duplicated_rows(df, ["k"], keep=keep).tolist() == expected.tolist()


def test_select_rows_equals_pandas_boolean_indexing_for_every_column_kind():
    import pyarrow as pa

    from lepton_pipelines.cleaning.support import select_rows

    rng = np.random.default_rng(3)
    n = 500
    table = pa.table(
        {
            "text": pa.chunked_array(
                [
                    pa.array([f"t{i}" for i in range(250)], pa.large_string()),
                    pa.array([None] + [f"u{i}" for i in range(249)], pa.large_string()),
                ]
            ),
        }
    )
    df = table.to_pandas()
    df["number"] = rng.normal(size=n)
    df["integer"] = pd.array(rng.choice([1, 2, None], n), dtype="Int64")
    df["flag"] = pd.array(rng.choice([True, False, None], n), dtype="boolean")
    df["category"] = pd.Categorical(rng.choice(["a", "b"], n))
    df["stamp"] = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    df.index = pd.RangeIndex(100, 100 + n)
    mask = rng.random(n) > 0.3
    pd.testing.assert_frame_equal(select_rows(df, mask), df[mask])
    pd.testing.assert_frame_equal(select_rows(df, mask, ["stamp", "text"]), df.loc[mask, ["stamp", "text"]])
