from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from lepton_pipelines.cleaning import PARSE_ERRORS_COLUMN, ColumnInfo, TableInfo, coerce_to_schema
from lepton_pipelines.cleaning.base import ParseOptions

pytestmark = pytest.mark.timeout(60)


def _table(*columns: tuple[str, str]) -> TableInfo:
    return TableInfo(source="t", columns=tuple(ColumnInfo(n, t) for n, t in columns))


def _errors(frame: pd.DataFrame) -> list[dict | None]:
    return [None if pd.isna(v) else json.loads(v) for v in frame[PARSE_ERRORS_COLUMN]]


def test_messy_text_numbers_are_parsed_counted_and_originals_kept():
    table = _table(("amount", "float"), ("count", "integer"))
    records = pd.DataFrame(
        {
            "amount": [" 12.5 ", "abc", "", None, "1e3", "-0.25"],
            "count": ["7", "1e3", " 12.5 ", "seven", "", "+4"],
        }
    )
    result = coerce_to_schema(records, table)

    amount = result.frame["amount"]
    assert amount.dtype == np.float64
    assert amount.iloc[0] == 12.5 and amount.iloc[4] == 1000.0 and amount.iloc[5] == -0.25
    assert amount.iloc[1:4].isna().all()  # "abc" failed; "" and None are plain nulls

    count = result.frame["count"]
    assert count.dtype == "Int64"
    assert count.tolist()[:2] == [7, 1000] and count.iloc[5] == 4
    assert count.iloc[2:5].isna().all()  # 12.5 is not an integer, "seven" is text, "" is null

    assert result.parse_failures == {"amount": 1, "count": 2}
    assert _errors(result.frame) == [None, {"amount": "abc"}, {"count": " 12.5 "}, {"count": "seven"}, None, None]


def test_timestamps_iso_with_and_without_offset_and_declared_epoch_seconds():
    table = TableInfo("t", (ColumnInfo("ts", "timestamp", parse=ParseOptions(formats=("iso8601", "epoch_s"))),))
    values = [
        "2026-11-25T10:00:00+02:00",
        "1764064800",
        "2026-11-25 10:00:00",
        "2026-11-25T10:00:00Z",
        "yesterday",
        None,
    ]
    result = coerce_to_schema(pd.DataFrame({"ts": values}), table)
    ts = result.frame["ts"]
    assert str(ts.dtype) == "datetime64[ns, UTC]"
    assert ts.iloc[0] == pd.Timestamp(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    assert ts.iloc[1] == pd.Timestamp(datetime.fromtimestamp(1764064800, tz=UTC))
    assert ts.iloc[2] == pd.Timestamp("2026-11-25 10:00", tz="UTC")  # no offset means UTC
    assert ts.iloc[3] == pd.Timestamp("2026-11-25 10:00", tz="UTC")
    assert ts.iloc[4:].isna().all()
    assert result.parse_failures == {"ts": 1}
    assert _errors(result.frame)[4] == {"ts": "yesterday"}


def test_timestamps_all_with_offsets_take_the_fast_path_and_match_pandas():
    values = ["2026-11-25T10:00:00+02:00", "2026-11-25T23:59:59.5-05:00"]
    result = coerce_to_schema(pd.DataFrame({"ts": values}), _table(("ts", "timestamp")))
    expected = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    assert result.frame["ts"].tolist() == expected.tolist()
    assert result.parse_failures == {}


def test_all_digit_values_are_never_guessed_to_be_epoch_time():
    result = coerce_to_schema(pd.DataFrame({"ts": ["1764064800", "2026-11-25T10:00:00Z"]}), _table(("ts", "timestamp")))
    assert pd.isna(result.frame["ts"].iloc[0]) and result.parse_failures == {"ts": 1}
    numbers = coerce_to_schema(pd.DataFrame({"ts": [1764064800, None]}), _table(("ts", "timestamp")))
    assert numbers.frame["ts"].isna().all() and numbers.parse_failures == {"ts": 1}


def test_native_epoch_numbers_with_declared_unit_and_naive_datetimes_become_utc():
    epoch = TableInfo("t", (ColumnInfo("ts", "timestamp", parse=ParseOptions(formats=("epoch_s",))),))
    numbers = coerce_to_schema(pd.DataFrame({"ts": [1764064800, None]}), epoch)
    assert numbers.frame["ts"].iloc[0] == pd.Timestamp(1764064800, unit="s", tz="UTC")
    assert pd.isna(numbers.frame["ts"].iloc[1]) and numbers.parse_failures == {}
    naive = coerce_to_schema(pd.DataFrame({"ts": pd.to_datetime(["2026-01-02 03:04:05"])}), _table(("ts", "timestamp")))
    assert naive.frame["ts"].iloc[0] == pd.Timestamp("2026-01-02 03:04:05", tz="UTC")


def test_booleans_accept_common_spellings_case_insensitively():
    values = ["yes", "No", "TRUE", "f", "1", "0", " t ", "maybe", "", None]
    result = coerce_to_schema(pd.DataFrame({"ok": values}), _table(("ok", "boolean")))
    ok = result.frame["ok"]
    assert ok.dtype == "boolean"
    assert ok.iloc[:7].tolist() == [True, False, True, False, True, False, True]
    assert ok.iloc[7:].isna().all()
    assert result.parse_failures == {"ok": 1}
    assert _errors(result.frame)[7] == {"ok": "maybe"}


def test_dates_are_arrow_dates_and_impossible_days_fail():
    values = ["2026-11-25", "2026-02-30", "2026-11-25T00:00:00", "2026-11-25T10:30", "25/11/2026", None]
    result = coerce_to_schema(pd.DataFrame({"day": values}), _table(("day", "date")))
    day = result.frame["day"]
    assert str(day.dtype) == "date32[day][pyarrow]"  # stored as Parquet DATE
    assert day.iloc[0] == date(2026, 11, 25) and day.iloc[2] == date(2026, 11, 25)
    assert day.iloc[[1, 3, 4, 5]].isna().all()
    assert result.parse_failures == {"day": 3}


def test_native_json_values_type_without_failures_except_wrong_kinds():
    records = pd.DataFrame(
        {"n": pd.Series([1, 2.0, 2.5, None], dtype=object), "flag": [True, False, None, True], "s": [1, "x", None, 2.5]}
    )
    result = coerce_to_schema(records, _table(("n", "integer"), ("flag", "boolean"), ("s", "string")))
    assert result.frame["n"].iloc[:2].tolist() == [1, 2] and result.frame["n"].iloc[2:].isna().all()
    assert result.parse_failures == {"n": 1}
    assert _errors(result.frame)[2] == {"n": "2.5"}
    assert result.frame["flag"].iloc[:2].tolist() == [True, False]
    assert result.frame["s"].iloc[:2].tolist() == ["1", "x"] and pd.isna(result.frame["s"].iloc[2])


def test_integer_ids_beyond_float_precision_are_exact():
    big = "9007199254740993"  # 2**53 + 1: a float would round it
    result = coerce_to_schema(pd.DataFrame({"id": [big, "x"]}), _table(("id", "integer")))
    assert result.frame["id"].iloc[0] == int(big)


def test_missing_extra_and_lineage_columns():
    table = _table(("a", "integer"), ("b", "float"), ("c", "boolean"))
    records = pd.DataFrame({"a": ["1", "2"], "zz": [3, 4], "_source_file": ["f.csv", "f.csv"], "_source_line": [2, 3]})
    result = coerce_to_schema(records, table)
    assert result.missing_columns == ["b", "c"] and result.extra_columns == ["zz"]
    assert result.frame["b"].isna().all() and result.frame["c"].isna().all() and result.frame["c"].dtype == "boolean"
    assert "zz" not in result.frame.columns  # one raw schema across partitions; reported, and kept in landing
    assert result.frame["_source_line"].tolist() == [2, 3] and result.frame["_source_file"].tolist() == ["f.csv"] * 2
    assert list(result.frame.columns) == ["a", "b", "c", "_source_file", "_source_line", PARSE_ERRORS_COLUMN]
    assert result.frame[PARSE_ERRORS_COLUMN].isna().all()
    assert result.report()["missing_columns"] == ["b", "c"]


def test_empty_records_give_an_empty_typed_frame():
    table = _table(("a", "integer"), ("ts", "timestamp"))
    result = coerce_to_schema(pd.DataFrame({"a": pd.Series([], dtype="str"), "ts": pd.Series([], dtype="str")}), table)
    assert len(result.frame) == 0 and result.parse_failures == {}
    assert result.frame["a"].dtype == "Int64" and str(result.frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_many_failures_in_one_row_and_many_rows_are_all_kept():
    n = 1000
    rng = np.random.default_rng(7)
    good = rng.integers(0, 10_000, n).astype(str)
    bad_rows = rng.choice(n, 37, replace=False)
    values = good.astype(object)
    values[bad_rows] = [f"bad{i}" for i in bad_rows]
    records = pd.DataFrame({"a": values, "b": values})
    result = coerce_to_schema(records, _table(("a", "integer"), ("b", "float")))
    assert result.parse_failures == {"a": 37, "b": 37}
    errors = _errors(result.frame)
    for row in bad_rows:
        assert errors[row] == {"a": f"bad{row}", "b": f"bad{row}"}
    assert sum(e is not None for e in errors) == 37
    ok = np.setdiff1d(np.arange(n), bad_rows)
    assert result.frame["a"].iloc[ok].tolist() == good[ok].astype(int).tolist()


def test_consuming_coercion_frees_typed_columns_and_gives_the_same_result():
    table = _table(("a", "integer"), ("b", "float"), ("t", "timestamp"), ("s", "string"))
    records = pd.DataFrame(
        {
            "a": pd.Series(["1", "x", " 3"], dtype="str"),
            "b": pd.Series(["1.5", "n/a", ""], dtype="str"),
            "t": pd.Series(["2026-01-01T00:00:00Z", "bad", "2026-01-01 00:00"], dtype="str"),
            "s": pd.Series(["p", None, "q"], dtype="str"),
            "zz": ["e1", "e2", "e3"],
            "_source_line": [2, 3, 4],
        }
    )
    kept = coerce_to_schema(records.copy(), table)
    consumed_records = records.copy()
    consumed = coerce_to_schema(consumed_records, table, consume=True)
    pd.testing.assert_frame_equal(consumed.frame, kept.frame)
    assert consumed.parse_failures == kept.parse_failures == {"a": 1, "b": 1, "t": 1}
    assert _errors(consumed.frame)[1] == {"a": "x", "b": "n/a", "t": "bad"}
    assert list(consumed_records.columns) == ["zz", "_source_line"]  # typed columns are gone from the input
