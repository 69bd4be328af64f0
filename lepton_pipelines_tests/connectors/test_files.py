"""The file-drop connector: formats, lineage, bad input, landing listing — on local disk and S3 (moto)."""

from __future__ import annotations

import io
import os
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lepton_pipelines.connectors import (
    REJECT_COLUMNS,
    SOURCE_FILE,
    SOURCE_LINE,
    ConnectorError,
    FetchRequest,
    FileSettings,
    build_connector,
    landing_run_key,
    list_landing_files,
)
from lepton_pipelines_tests.connectors.conftest import land

pytestmark = pytest.mark.timeout(60)

DAY = "2026-01-02"
PART = f"landing/orders/date={DAY}"


def fetch(lake, partition_key: str | None = DAY, source: str = "orders", **settings):
    connector = build_connector(FileSettings.model_validate({"type": "file", **settings}))
    return connector.fetch(FetchRequest(source=source, partition_key=partition_key, lake=lake))


def rejects_by_line(result) -> dict[int, dict]:
    return {int(r["source_line"]): r for r in result.rejects.to_dict("records")}


# -- happy paths -----------------------------------------------------------------------------------


def test_csv_lands_every_value_as_string_with_physical_line_numbers(local_lake):
    body = b'id,name,amount\n1,"Smith, J",007\n\n2,,1.50\r\n3,x,1e3\n'
    land(local_lake, f"{PART}/a.csv", body)
    result = fetch(local_lake)
    records = result.records
    assert list(records.columns) == ["id", "name", "amount", SOURCE_FILE, SOURCE_LINE]
    assert records["id"].tolist() == ["1", "2", "3"]
    assert records["amount"].tolist() == ["007", "1.50", "1e3"]  # landed text, not parsed numbers
    assert records["name"].tolist()[0] == "Smith, J" and pd.isna(records["name"].tolist()[1])
    assert records[SOURCE_LINE].tolist() == [2, 4, 5]  # blank line 3 skipped, header is line 1
    assert set(records[SOURCE_FILE]) == {f"{PART}/a.csv"}
    assert result.rejects.empty and list(result.rejects.columns) == list(REJECT_COLUMNS)
    assert result.landed_schema == {
        "id": "string",
        "name": "string",
        "amount": "string",
    }  # CSV lands text: no type guessed from values
    [entry] = result.inputs
    assert entry["path"] == f"{PART}/a.csv" and entry["rows"] == 3 and entry["bytes"] == len(body)
    assert entry["columns"] == ["id", "name", "amount"] and entry["partition_key"] == DAY


def test_csv_options_delimiter_quotechar_encoding_and_headerless(local_lake):
    land(local_lake, f"{PART}/a.csv", "1;'Zoë; B';München\n2;x;y\n".encode("latin-1"))
    result = fetch(
        local_lake, delimiter=";", quotechar="'", encoding="latin-1", header=False, column_names=["id", "name", "city"]
    )
    assert result.records["name"].tolist() == ["Zoë; B", "x"]
    assert result.records["city"].tolist() == ["München", "y"]
    assert result.records[SOURCE_LINE].tolist() == [1, 2]


def test_jsonl_round_trip_flattens_one_level(local_lake):
    lines = [
        '{"id": 1, "customer": {"id": 7, "tags": {"vip": true}}, "items": [1, 2], "amount": null}',
        "",
        '{"id": 2, "customer": {"id": 8}, "amount": 2.5}',
    ]
    land(local_lake, f"{PART}/a.jsonl", "\n".join(lines).encode())
    result = fetch(local_lake, format="jsonl")
    rows = result.records.to_dict("records")
    assert rows[0]["id"] == 1 and rows[0]["customer__id"] == 7
    assert rows[0]["customer__tags"] == '{"vip": true}' and rows[0]["items"] == "[1, 2]"
    assert rows[1]["amount"] == 2.5 and result.records[SOURCE_LINE].tolist() == [1, 3]
    assert result.landed_schema["id"] == "integer" and result.landed_schema["amount"] == "float"


def test_parquet_round_trip_keeps_types_and_row_numbers(local_lake):
    table = pa.table({"id": [1, 2, 3], "ts": pd.to_datetime(["2026-01-02"] * 3), "v": [0.5, None, 1.5]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    land(local_lake, f"{PART}/a.parquet", buffer.getvalue())
    result = fetch(local_lake, format="parquet")
    assert result.records["id"].tolist() == [1, 2, 3]
    assert result.records[SOURCE_LINE].tolist() == [1, 2, 3]
    assert result.landed_schema == {"id": "integer", "ts": "timestamp", "v": "float"}


def test_unpartitioned_source_reads_top_level_files_and_skips_hidden_ones(local_lake):
    land(local_lake, "landing/devices/devices.csv", b"id\n1\n")
    land(local_lake, "landing/devices/.devices.csv.tmp.csv", b"id\n9\n")
    land(local_lake, "landing/devices/_SUCCESS.csv", b"id\n9\n")
    result = fetch(local_lake, partition_key=None, source="devices")
    assert result.records["id"].tolist() == ["1"]
    assert [i["path"] for i in result.inputs] == ["landing/devices/devices.csv"]


def test_custom_glob_with_date_in_file_name(local_lake):
    land(local_lake, f"landing/orders/orders_{DAY}.csv", b"id\n1\n")
    land(local_lake, "landing/orders/orders_2026-01-03.csv", b"id\n2\n")
    result = fetch(local_lake, glob="orders_{date}.csv")
    assert result.records["id"].tolist() == ["1"]
    files = list_landing_files(local_lake, "orders", FileSettings(glob="orders_{date}.csv"))
    assert [f.partition_key for f in files] == [DAY, "2026-01-03"]


def test_no_matching_files_is_an_error_naming_the_folder(local_lake):
    with pytest.raises(ConnectorError, match=r"no files match 'date=2026-01-02/\*\.csv' under .*landing/orders"):
        fetch(local_lake)


# -- bad input -------------------------------------------------------------------------------------


def test_malformed_csv_lines_become_rejects_with_exact_line_and_raw_text(local_lake):
    body = b'id,name,amount\n1,a,1\n2,b\n3,c,3,extra\n\n4,"open,4\n5,e,5\n'
    land(local_lake, f"{PART}/bad.csv", body)
    result = fetch(local_lake)
    assert result.records["id"].tolist() == ["1", "5"]
    assert result.records[SOURCE_LINE].tolist() == [2, 7]
    rejects = rejects_by_line(result)
    assert sorted(rejects) == [3, 4, 6]
    assert rejects[3]["raw"] == "2,b" and rejects[3]["reason"] == "expected 3 fields (id, name, amount), found 2 fields"
    assert rejects[4]["raw"] == "3,c,3,extra" and "found 4 fields" in rejects[4]["reason"]
    assert rejects[6]["raw"] == '4,"open,4' and rejects[6]["reason"].startswith("unterminated quoted value")
    assert set(result.rejects["source_file"]) == {f"{PART}/bad.csv"}
    assert result.inputs[0]["rejected"] == 3


def test_non_utf8_bytes_reject_only_the_affected_line(local_lake):
    body = b"id,name\n1,ok\n2,caf\xe9\n3,fine\n"
    land(local_lake, f"{PART}/latin.csv", body)
    result = fetch(local_lake)
    assert result.records["name"].tolist() == ["ok", "fine"]
    [reject] = result.rejects.to_dict("records")
    assert reject["source_line"] == 3
    bad_byte = body.index(b"\xe9")
    assert reject["reason"] == f"invalid utf-8 at byte {bad_byte}" and bad_byte == 18
    assert reject["raw"] == "2,caf\\xe9"  # the original byte stays recoverable


def test_multiline_values_when_allowed_keep_the_first_line_number(local_lake):
    land(local_lake, f"{PART}/a.csv", b'id,note\n1,"two\nlines"\n2,plain\n')
    result = fetch(local_lake, multiline_values=True)
    assert result.records["note"].tolist() == ["two\nlines", "plain"]
    assert result.records[SOURCE_LINE].tolist() == [2, 4]
    strict = fetch(local_lake)  # default: a quote left open at line end is a bad line, not a silent join
    assert sorted(rejects_by_line(strict)) == [2, 3]
    assert strict.records["id"].tolist() == ["2"]


def test_empty_and_header_only_files_land_zero_records_and_are_listed_with_a_note(local_lake):
    land(local_lake, f"{PART}/empty.csv", b"")
    land(local_lake, f"{PART}/header.csv", b"id,name\n")
    land(local_lake, f"{PART}/data.csv", b"id,name\n1,a\n")
    result = fetch(local_lake)
    notes = {i["path"].rsplit("/", 1)[1]: i.get("note") for i in result.inputs}
    assert notes == {
        "data.csv": None,
        "empty.csv": "empty file (0 bytes): no records",
        "header.csv": "header only: no records",
    }
    assert result.records["id"].tolist() == ["1"] and result.rejects.empty
    rows = {i["path"].rsplit("/", 1)[1]: i["rows"] for i in result.inputs}
    assert rows == {"data.csv": 1, "empty.csv": 0, "header.csv": 0}


def test_bad_json_lines_are_rejected_and_the_rest_kept(local_lake):
    body = b'{"id": 1}\n{"id": 2,\n[1, 2]\n{"id": "\xff"}\n{"id": 5}\n'
    land(local_lake, f"{PART}/a.jsonl", body)
    result = fetch(local_lake, format="jsonl")
    assert result.records["id"].tolist() == [1, 5] and result.records[SOURCE_LINE].tolist() == [1, 5]
    rejects = rejects_by_line(result)
    assert rejects[2]["reason"].startswith("invalid JSON") and rejects[2]["raw"] == '{"id": 2,'
    assert rejects[3]["reason"] == "expected a JSON object, found list"
    bad_byte = body.index(b"\xff")
    assert rejects[4]["reason"] == f"invalid utf-8 at byte {bad_byte}"


def test_extra_and_missing_columns_pass_through_and_are_listed_per_file(local_lake):
    land(local_lake, f"{PART}/a.csv", b"id,name\n1,a\n")
    land(local_lake, f"{PART}/b.csv", b"id,name,surprise\n2,b,x\n")
    land(local_lake, f"{PART}/c.csv", b"id\n3\n")
    result = fetch(local_lake)
    assert result.records["id"].tolist() == ["1", "2", "3"]
    assert result.records["surprise"].tolist()[1] == "x" and pd.isna(result.records["name"].tolist()[2])
    assert {i["path"].rsplit("/", 1)[1]: i["columns"] for i in result.inputs} == {
        "a.csv": ["id", "name"],
        "b.csv": ["id", "name", "surprise"],
        "c.csv": ["id"],
    }
    assert set(result.landed_schema) == {"id", "name", "surprise"}


def test_unreadable_parquet_becomes_a_reject_naming_the_file(local_lake):
    land(local_lake, f"{PART}/broken.parquet", b"PAR1 not really parquet")
    result = fetch(local_lake, format="parquet")
    [reject] = result.rejects.to_dict("records")
    assert reject["source_file"] == f"{PART}/broken.parquet" and "not a readable Parquet file" in reject["reason"]
    assert result.records.empty


def test_duplicate_header_names_fail_naming_the_file(local_lake):
    land(local_lake, f"{PART}/dup.csv", b"id,id\n1,2\n")
    with pytest.raises(ConnectorError, match=f"{PART}/dup.csv: header names column\\(s\\) more than once: id"):
        fetch(local_lake)


def test_settings_reject_typos_and_unsafe_globs():
    with pytest.raises(ValueError, match="delimitr"):
        FileSettings.model_validate({"type": "file", "delimitr": ";"})
    with pytest.raises(ValueError, match="must be relative"):
        FileSettings.model_validate({"type": "file", "glob": "../other/*.csv"})
    with pytest.raises(ValueError, match="column_names"):
        FileSettings.model_validate({"type": "file", "header": False})


# -- landing listing and run keys ------------------------------------------------------------------


def test_landing_run_keys_change_when_a_file_is_rewritten_and_only_then(local_lake):
    land(local_lake, f"{PART}/a.csv", b"id\n1\n")
    land(local_lake, "landing/orders/date=2026-01-03/b.csv", b"id\n2\n")
    land(local_lake, "landing/orders/date=2026-01-03/.b.csv.part", b"partial")
    settings = FileSettings()
    first = list_landing_files(local_lake, "orders", settings)
    assert [(f.path, f.partition_key) for f in first] == [
        (f"{PART}/a.csv", DAY),
        ("landing/orders/date=2026-01-03/b.csv", "2026-01-03"),
    ]
    again = list_landing_files(local_lake, "orders", settings)
    assert [landing_run_key(f) for f in again] == [landing_run_key(f) for f in first]

    path = local_lake.path(*f"{PART}/a.csv".split("/")).path
    os.utime(path, (time.time() + 5, time.time() + 5))  # same bytes, new mtime: a new version
    touched = list_landing_files(local_lake, "orders", settings)
    assert landing_run_key(touched[0]) != landing_run_key(first[0])
    assert landing_run_key(touched[1]) == landing_run_key(first[1])
    land(local_lake, f"{PART}/a.csv", b"id\n1\n2\n")
    grown = list_landing_files(local_lake, "orders", settings)
    assert grown[0].size == 7 and landing_run_key(grown[0]) not in {
        landing_run_key(touched[0]),
        landing_run_key(first[0]),
    }


# -- S3 through moto's server ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_s3_round_trip_matches_local(s3_lake, local_lake, fmt):
    frame = pd.DataFrame({"id": [1, 2], "name": ["a", "b"]})
    if fmt == "csv":
        data = frame.to_csv(index=False).encode()
    elif fmt == "jsonl":
        data = frame.to_json(orient="records", lines=True).encode()
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    for lake in (s3_lake, local_lake):
        land(lake, f"{PART}/a.{fmt}", data)
    on_s3, on_disk = fetch(s3_lake, format=fmt), fetch(local_lake, format=fmt)
    pd.testing.assert_frame_equal(on_s3.records, on_disk.records)
    assert on_s3.records[SOURCE_FILE].tolist() == [f"{PART}/a.{fmt}"] * 2
    assert on_s3.inputs[0]["bytes"] == len(data) and on_s3.landed_schema == on_disk.landed_schema


def test_s3_bad_lines_are_rejected_and_listing_sees_rewrites(s3_lake):
    land(s3_lake, f"{PART}/a.csv", b"id,name\n1,a\n2\n")
    result = fetch(s3_lake)
    assert result.records["id"].tolist() == ["1"]
    assert rejects_by_line(result)[3]["raw"] == "2"
    first = list_landing_files(s3_lake, "orders", FileSettings())
    assert list_landing_files(s3_lake, "orders", FileSettings()) == first
    land(s3_lake, f"{PART}/a.csv", b"id,name\n1,b\n2,c\n")  # rewritten: new ETag and size
    rewritten = list_landing_files(s3_lake, "orders", FileSettings())
    assert [f.partition_key for f in rewritten] == [DAY]
    assert landing_run_key(rewritten[0]) != landing_run_key(first[0])


# -- fast CSV path: wrong-width lines stay on pyarrow, worded and numbered as the line-by-line reader -----

WRONG_WIDTH_ONLY = b'id,name,amount\n1,a,1\n2,b\n3,c,3,extra\n\n4,d,4\r\n2,b\n5,e,5\n6,f,6,7,8\n7,"g, quoted",7\n2,b'


def test_csv_fast_path_rejects_wrong_width_lines_exactly_like_the_line_by_line_reader():
    """A file whose only faults are wrong-width lines (one repeated, a blank line, CRLF, no final newline)
    is read by pyarrow, and its records, line numbers and rejects equal the line-by-line reader's."""
    from lepton_pipelines.connectors.files.csv import _csv_column_names, _read_csv_fast, _read_csv_line_by_line

    settings = FileSettings(type="file")
    names = _csv_column_names(WRONG_WIDTH_ONLY, "bad.csv", settings)
    fast = _read_csv_fast(WRONG_WIDTH_ONLY, "bad.csv", names, settings)
    assert fast is not None, "wrong-width lines alone must not send the file down the slow path"
    slow = _read_csv_line_by_line(WRONG_WIDTH_ONLY, "bad.csv", names, settings)
    (fast_table, fast_lines, fast_rejects), (slow_table, slow_lines, slow_rejects) = fast, slow
    assert fast_table.to_pylist() == slow_table.to_pylist()
    assert fast_lines.tolist() == slow_lines.tolist() == [2, 6, 8, 10]
    key = lambda r: (r["source_line"], r["raw"])  # noqa: E731
    assert sorted(fast_rejects, key=key) == sorted(slow_rejects, key=key)
    assert [(r["source_line"], r["raw"]) for r in sorted(fast_rejects, key=key)] == [
        (3, "2,b"),
        (4, "3,c,3,extra"),
        (7, "2,b"),
        (9, "6,f,6,7,8"),
        (11, "2,b"),
    ]


def test_fetch_of_wrong_width_lines_gives_records_and_rejects_by_physical_line(local_lake):
    land(local_lake, f"{PART}/bad.csv", WRONG_WIDTH_ONLY)
    result = fetch(local_lake)
    assert result.records["id"].tolist() == ["1", "4", "5", "7"]
    assert result.records[SOURCE_LINE].tolist() == [2, 6, 8, 10]
    rejects = rejects_by_line(result)
    assert sorted(rejects) == [3, 4, 7, 9, 11]
    assert rejects[9]["reason"] == "expected 3 fields (id, name, amount), found 5 fields"


def test_source_file_is_a_categorical_of_the_paths_in_lexicographic_order(local_lake):
    """Each record names its file; the column is categorical (a handful of paths over many rows) with the
    paths as sorted categories, so sorting by it is sorting by path."""
    land(local_lake, f"{PART}/b.csv", b"id\n1\n2\n")
    land(local_lake, f"{PART}/a.csv", b"id\n3\n")
    land(local_lake, f"{PART}/c.csv", b"id\n")  # header only: no rows, still a category
    records = fetch(local_lake).records
    column = records[SOURCE_FILE]
    assert isinstance(column.dtype, pd.CategoricalDtype)
    assert list(column.cat.categories) == [f"{PART}/a.csv", f"{PART}/b.csv", f"{PART}/c.csv"]
    assert column.tolist() == [f"{PART}/a.csv", f"{PART}/b.csv", f"{PART}/b.csv"]
    assert records["id"].tolist() == ["3", "1", "2"] and records[SOURCE_LINE].tolist() == [2, 2, 3]


@pytest.mark.parametrize(
    "data, fast_expected",
    [
        pytest.param(b"id,name,amount\n1,a,1\n2,b\n3,c,3\n4,d,4,x\n5,e,5\n", True, id="no-blank-lines-counted"),
        pytest.param(b"id,name,amount\r\n1,a,1\r\n2,b\r\n3,c,3\r\n", True, id="crlf-counted"),
        pytest.param(b"id,name,amount\n1,a,1\r2,b,2\n2,b\n\n3,c,3\n", False, id="lone-cr-and-blank-line"),
        pytest.param(b"\nid,name,amount\n1,a,1\n2,b\n3,c,3", True, id="leading-blank-line-no-final-newline"),
        pytest.param(b"id,name,amount\n1,a,1\r\n2,b\n3,c,3\r4,d,4\n", False, id="lone-cr-without-blank-line"),
    ],
)
def test_csv_fast_path_numbers_lines_like_the_line_by_line_reader(data, fast_expected):
    """The fast path numbers records by counting lines when the counts prove there are no blank lines and
    no lone CRs, and by scanning otherwise; either way every record and reject carries the line the
    line-by-line reader gives it."""
    from lepton_pipelines.connectors.files.csv import _csv_column_names, _read_csv_fast, _read_csv_line_by_line

    settings = FileSettings(type="file")
    names = _csv_column_names(data, "f.csv", settings)
    slow_table, slow_lines, slow_rejects = _read_csv_line_by_line(data, "f.csv", names, settings)
    fast = _read_csv_fast(data, "f.csv", names, settings)
    if not fast_expected and fast is None:  # the fast path may decline such a file, never number it differently
        return
    assert fast is not None
    fast_table, fast_lines, fast_rejects = fast
    assert fast_table.to_pylist() == slow_table.to_pylist()
    assert fast_lines.tolist() == slow_lines.tolist()
    assert sorted((r["source_line"], r["raw"]) for r in fast_rejects) == sorted(
        (r["source_line"], r["raw"]) for r in slow_rejects
    )


def test_csv_fast_path_takes_the_counted_numbering_for_a_file_without_blank_lines():
    from lepton_pipelines.connectors.files.csv import _counted_line_numbers

    assert _counted_line_numbers(b"h\n1\n2\n", rows_seen=2, header=True).tolist() == [2, 3]
    assert _counted_line_numbers(b"h\r\n1\r\n2", rows_seen=2, header=True).tolist() == [2, 3]
    assert _counted_line_numbers(b"h\n\n1\n2\n", rows_seen=2, header=True) is None  # a blank line: scan
    assert _counted_line_numbers(b"h\n1\r2\n", rows_seen=2, header=True) is None  # a lone CR: scan
