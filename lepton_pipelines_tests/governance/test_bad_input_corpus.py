"""The bad-input corpus: what real exports contain — formats, encodings, empty files, pandas-written floats,
epoch numbers, decimal commas, nested JSON — each case with its exact outcome: the certified value, the
quarantine row and its reason, or the named error. No case may end green with a loss, a guess or an
expectation that could not run. (Registry-level cases are in ``test_registry_corpus``.)"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lepton_pipelines.governance import GreatExpectationsResource

from .corpus import BASE, HEADER, PARTITION, Outcome, csv_bytes, good_rows, jsonl_bytes, merged, row, run_source

pytestmark = pytest.mark.timeout(300)
TEN_UTC = pd.Timestamp(f"{PARTITION}T10:00:00Z")
EPOCH_TEN = 1795600800  # 2026-11-25T10:00:00Z


@dataclass
class Case:
    id: str
    files: dict[str, bytes]
    expect: Callable[[Outcome], None]
    change: dict[str, Any] = field(default_factory=dict)


def one_bad(**values: str) -> dict[str, bytes]:
    return {"part-0001.csv": csv_bytes([*good_rows(), row(**values)])}


def in_format(good: dict[str, str], **values: str) -> dict[str, bytes]:
    """A file whose good rows are written in the column's declared format (``good``), plus the case's row."""
    return {"part-0001.csv": csv_bytes([*[{**r, **good} for r in good_rows()], row(**{**good, **values})])}


def parquet_bytes(frame: pd.DataFrame | pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def quarantined_with(
    o: Outcome, record: str, stage: str, reason: str, rule: str | None = None, check: str | None = None
) -> None:
    rows = o.quarantined(record)
    assert len(rows) == 1, (record, o.quarantine[["id", "_stage", "_reason"]].values.tolist(), o.failure)
    q = rows.iloc[0]
    assert (q["_stage"], q["_reason"]) == (stage, reason), (q["_stage"], q["_reason"])
    if rule is not None:
        assert q["_rule"] == rule
    if check is not None:
        assert q["_check"] == check
    assert o.success, o.failure
    assert record not in set(o.governed["id"]) and len(o.governed) == 3


def certified(o: Outcome, record: str = "B1", **values: Any) -> None:
    assert o.success, o.failure
    got = o.governed_row(record)
    for column, expected in values.items():
        value = got[column]
        if expected is None:
            assert pd.isna(value), (column, value)
        else:
            assert value == expected, (column, value, expected)
    assert o.quarantine.empty, o.quarantine[["id", "_reason"]].values.tolist()


def parse_quarantine(column: str, text: str, expected: str) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        quarantined_with(o, "B1", "raw", f"{column}: {text!r} is not {expected}", rule="parse")
        assert o.quarantined("B1").iloc[0][column] == text  # the landed text, not the null it typed to
        assert not o.passed("raw.parse_errors") and o.passed("raw.schema_drift")

    return check


def fails_with(*needles: str, check: str | None = None) -> Callable[[Outcome], None]:
    def expect(o: Outcome) -> None:
        assert not o.success
        for needle in needles:
            assert needle in o.failure, (needle, o.failure)
        if check:
            assert not o.passed(check)

    return expect


def certified_and_flagged(check: str, **values: Any) -> Callable[[Outcome], None]:
    """Certified with ``values`` while ``check`` reports (fails, non-blocking) what happened."""

    def expect(o: Outcome) -> None:
        certified(o, **values)
        assert not o.passed(check), o.checks[check].description

    return expect


def certified_and_passing(check: str, **values: Any) -> Callable[[Outcome], None]:
    def expect(o: Outcome) -> None:
        certified(o, **values)
        assert o.passed(check), o.checks[check].description

    return expect


def certified_without_drift(record: str, **values: Any) -> Callable[[Outcome], None]:
    def expect(o: Outcome) -> None:
        certified(o, record, **values)
        assert o.passed("raw.schema_drift"), o.checks["raw.schema_drift"].description

    return expect


def empty_input_named(file: str) -> Callable[[Outcome], None]:
    def expect(o: Outcome) -> None:
        assert o.success, o.failure
        assert o.passed("raw.schema_drift"), o.checks["raw.schema_drift"].description
        assert not o.passed("raw.empty_input") and file in o.checks["raw.empty_input"].description
        assert o.passed("governed.row_retention")  # nothing landed in that file: no loss

    return expect


def _assert_parse_mark(o: Outcome, record: str, expected: dict[str, str] | None) -> None:
    mark = o.governed_row(record)["_parse_errors"]
    assert (None if pd.isna(mark) else json.loads(mark)) == expected, mark


def _assert_absent_optional(o: Outcome, columns: list[str]) -> None:
    drift = o.checks["raw.schema_drift"]
    assert drift.passed and drift.metadata["absent_optional_columns"].value == columns, drift.description
    assert "optional key(s) in no record, read as null: " + ", ".join(columns) in drift.description


def read_reject(line: int | None, reason_part: str, raw_part: str | None = None) -> Callable[[Outcome], None]:
    """One landed line/record that is no record: quarantined by the reader with its line and text."""

    def expect(o: Outcome) -> None:
        assert o.success, o.failure
        assert len(o.quarantine) == 1, o.quarantine.values.tolist()
        q = o.quarantine.iloc[0]
        assert q["_stage"] == "raw" and q["_rule"] == "read" and reason_part in q["_reason"], q["_reason"]
        if line is not None:
            assert int(q["_source_line"]) == line
        if raw_part is not None:
            assert raw_part in q["_raw"]
        assert len(o.governed) == 3

    return expect


def drift_says(text: str, blocked: bool) -> Callable[[Outcome], None]:
    def expect(o: Outcome) -> None:
        drift = o.checks["raw.schema_drift"]
        assert not drift.passed and text in drift.description, drift.description
        assert o.success is not blocked, o.failure

    return expect


def everything_lost_fails(o: Outcome) -> None:
    """The real-data case: every event time is text like 'Jan 1 2000'. Nothing may be certified green."""
    assert not o.success
    assert (
        not o.passed("raw.schema_drift")
        and "retyped: ts (4 of 4 values are not timestamp)" in o.checks["raw.schema_drift"].description
    )
    guard = o.checks["governed.row_retention"]
    assert not guard.passed and "4 landed record(s) and none governed" in guard.description
    assert o.governed is None  # nothing published
    assert len(o.quarantine) == 4 and (o.quarantine["_reason"] == f"ts: 'Jan 1 2000' is not {ISO_TS}").all()


def all_certified_with_declared_format(o: Outcome) -> None:
    assert o.success, o.failure
    assert len(o.governed) == 4 and (o.governed["ts"] == pd.Timestamp(f"{PARTITION}T00:00Z")).all()


def guard_refuses(o: Outcome) -> None:
    assert not o.success
    guard = o.checks["governed.row_retention"]
    assert (
        not guard.passed
        and "governed keeps 1 of 4 landed record(s) (25.0%), below min_retained_fraction 50%" in guard.description
    )
    assert "not certified" in o.failure and o.governed is None
    assert len(o.quarantine) == 3 and (o.quarantine["_check"] == "currency__column_values_to_be_in_set").all()


def guard_setting(o: Outcome) -> None:
    assert o.success, o.failure
    assert len(o.governed) == 1 and o.passed("governed.row_retention")


def latest_version_kept(o: Outcome) -> None:
    assert o.success, o.failure
    assert o.governed_row("B1")["amount"] == 2.0
    q = o.quarantine.iloc[0]
    assert len(o.quarantine) == 1 and q["_stage"] == "clean" and q["_rule"] == "deduplicate" and q["amount"] == "1.0"
    assert q["_reason"] == "superseded duplicate of id=B1"


def gx_error_warns_with_error_severity(o: Outcome) -> None:
    assert o.success, o.failure  # severity warn: reported, not blocking
    check = o.checks["clean.ts__column_values_to_match_strftime_format"]
    assert not check.passed and check.severity.value == "ERROR" and "could not be evaluated" in check.description


def unreadable_parquet(o: Outcome) -> None:
    assert not o.success and "1 landed record(s) and none governed" in o.failure
    assert o.quarantine.iloc[0]["_rule"] == "read" and "not a readable Parquet file" in o.quarantine.iloc[0]["_reason"]


def parquet_nan_integers(o: Outcome) -> None:
    certified(o, qty=4)
    assert o.governed_row("A1")["qty"] == 517 and pd.isna(o.governed_row("A2")["qty"])


INTEGER = "an integer (no thousands separator)"
NUMBER = "a number ('.' decimal point, no thousands separator)"
ISO_TS = "a timestamp (ISO-8601)"
ISO_DATE = "a date (ISO-8601)"
BOOLEAN = "a boolean (true: true/t/yes/y/1; false: false/f/no/n/0)"

CASES: list[Case] = [
    # -- typing: numbers ------------------------------------------------------------------------------
    Case("integer_with_thousands_separator", one_bad(qty="1,234"), parse_quarantine("qty", "1,234", INTEGER)),
    Case(
        "integer_thousands_declared",
        one_bad(qty="1,234"),
        lambda o: certified(o, qty=1234),
        {"schema": {"qty": {"thousands": ","}}},
    ),
    Case(
        "integer_bad_grouping_with_thousands_declared",
        one_bad(qty="12,34"),
        parse_quarantine("qty", "12,34", "an integer (',' thousands separator)"),
        {"schema": {"qty": {"thousands": ","}}},
    ),
    Case("integer_written_by_pandas_as_float", one_bad(qty="517.0"), lambda o: certified(o, qty=517)),
    Case("integer_fraction", one_bad(qty="2.5"), parse_quarantine("qty", "2.5", INTEGER)),
    Case("integer_beyond_int64", one_bad(qty="1e308"), parse_quarantine("qty", "1e308", INTEGER)),
    Case("integer_blank_is_null_not_failure", one_bad(qty=""), lambda o: certified(o, qty=None)),
    Case("integer_padded", one_bad(qty="  42 "), lambda o: certified(o, qty=42)),
    Case("float_decimal_comma_undeclared", one_bad(amount="12,50"), parse_quarantine("amount", "12,50", NUMBER)),
    Case(
        "float_decimal_comma_declared",
        in_format({"amount": "10,5"}, amount="1.234,50"),
        lambda o: certified(o, amount=1234.5),
        {"schema": {"amount": {"decimal": ",", "thousands": "."}}},
    ),
    Case(
        "float_dot_in_decimal_comma_column",
        in_format({"amount": "10,5"}, amount="12.50"),
        parse_quarantine("amount", "12.50", "a number (',' decimal point, no thousands separator)"),
        {"schema": {"amount": {"decimal": ","}}},
    ),
    Case("float_currency_symbol", one_bad(amount="$40"), parse_quarantine("amount", "$40", NUMBER)),
    Case("float_scientific", one_bad(amount="1.5e3"), lambda o: certified(o, amount=1500.0)),
    Case(
        "float_required_blank",
        one_bad(amount=""),
        lambda o: quarantined_with(o, "B1", "clean", "amount is required", rule="required"),
    ),
    Case("float_required_unparsable_names_the_text", one_bad(amount="n/a"), parse_quarantine("amount", "n/a", NUMBER)),
    Case(
        "float_unparsable_with_null_policy_in_optional_column",
        {"part-0001.csv": csv_bytes([*good_rows(), row()])},
        lambda o: certified(o),
        {"schema": {"amount": {"on_parse_error": "null"}}},
    ),
    # -- typing: booleans -----------------------------------------------------------------------------
    Case("boolean_maybe", one_bad(ok="maybe"), parse_quarantine("ok", "maybe", BOOLEAN)),
    # nulled under on_parse_error: null, and the governed row says so: the landed text in _parse_errors
    Case(
        "boolean_maybe_null_policy",
        one_bad(ok="maybe"),
        lambda o: (
            certified_and_flagged("raw.parse_errors", ok=None)(o),
            _assert_parse_mark(o, "B1", {"ok": "maybe"}),
            _assert_parse_mark(o, "A1", None),
        ),
        {"schema": {"ok": {"on_parse_error": "null"}}},
    ),
    Case(
        "boolean_declared_spellings",
        {"part-0001.csv": csv_bytes([*[{**r, "ok": "J"} for r in good_rows()], row(ok="N")])},
        lambda o: certified(o, ok=False),
        {"schema": {"ok": {"true_values": ["J"], "false_values": ["N"]}}},
    ),
    Case(
        "boolean_default_spelling_outside_declared",
        one_bad(ok="yes"),
        parse_quarantine("ok", "yes", "a boolean (true: true; false: false)"),
        {"schema": {"ok": {"true_values": ["true"], "false_values": ["false"]}}},
    ),
    Case("boolean_yes_default", one_bad(ok="YES"), lambda o: certified(o, ok=True)),
    # -- typing: timestamps ---------------------------------------------------------------------------
    Case(
        "timestamp_all_digits_is_not_epoch", one_bad(ts=str(EPOCH_TEN)), parse_quarantine("ts", str(EPOCH_TEN), ISO_TS)
    ),
    Case(
        "timestamp_epoch_declared",
        one_bad(ts=str(EPOCH_TEN)),
        lambda o: certified(o, ts=TEN_UTC),
        {"schema": {"ts": {"format": ["iso8601", "epoch_s"]}}},
    ),
    Case(
        "timestamp_epoch_ms_declared",
        one_bad(ts=str(EPOCH_TEN * 1000)),
        lambda o: certified(o, ts=TEN_UTC),
        {"schema": {"ts": {"format": ["iso8601", "epoch_ms"]}}},
    ),
    Case(
        "timestamp_iso_basic_date_is_iso",
        one_bad(ts="20261125"),
        lambda o: certified(o, ts=pd.Timestamp(f"{PARTITION}T00:00Z")),
    ),
    Case(
        "timestamp_declared_strftime",
        one_bad(ts="25/11/2026 10:00"),
        lambda o: certified(o, ts=TEN_UTC),
        {"schema": {"ts": {"format": ["%d/%m/%Y %H:%M", "iso8601"]}}},
    ),
    Case(
        "timestamp_strftime_undeclared",
        one_bad(ts="25/11/2026 10:00"),
        parse_quarantine("ts", "25/11/2026 10:00", ISO_TS),
    ),
    Case(
        "timestamp_naive_in_declared_zone",
        one_bad(ts=f"{PARTITION} 11:00"),
        lambda o: certified(o, ts=TEN_UTC),
        {"schema": {"ts": {"timezone": "Europe/Berlin"}}},
    ),
    Case(
        "timestamp_nonexistent_local_time",
        one_bad(ts="2026-03-29 02:30"),
        parse_quarantine("ts", "2026-03-29 02:30", "a timestamp (ISO-8601, naive times in Europe/Berlin)"),
        {"schema": {"ts": {"timezone": "Europe/Berlin"}}},
    ),
    Case("timestamp_offset_converted", one_bad(ts=f"{PARTITION}T15:30:00+05:30"), lambda o: certified(o, ts=TEN_UTC)),
    Case("timestamp_text_month", one_bad(ts="Jan 1 2000"), parse_quarantine("ts", "Jan 1 2000", ISO_TS)),
    # -- typing: dates --------------------------------------------------------------------------------
    Case("date_day_first_undeclared", one_bad(day="25/11/2026"), parse_quarantine("day", "25/11/2026", ISO_DATE)),
    Case(
        "date_declared_text_month",
        in_format({"day": "Nov 25 2026"}, day="Nov 24 2026"),
        lambda o: certified(o, day=date(2026, 11, 24)),
        {"schema": {"day": {"format": "%b %d %Y"}}},
    ),
    Case("date_impossible_day", one_bad(day="2026-02-30"), parse_quarantine("day", "2026-02-30", ISO_DATE)),
    Case(
        "date_not_in_leap_year_with_format",
        in_format({"day": "Nov 25 2026"}, day="Feb 29 2025"),
        parse_quarantine("day", "Feb 29 2025", "a date (%b %d %Y)"),
        {"schema": {"day": {"format": "%b %d %Y"}}},
    ),
    Case(
        "date_with_time_of_day", one_bad(day="2026-11-25T10:30"), parse_quarantine("day", "2026-11-25T10:30", ISO_DATE)
    ),
    # -- required values and sets ---------------------------------------------------------------------
    Case(
        "required_currency_empty",
        one_bad(currency=""),
        lambda o: quarantined_with(o, "B1", "clean", "currency is required", rule="required"),
    ),
    Case(
        "currency_not_in_set",
        one_bad(currency="XXX"),
        lambda o: quarantined_with(
            o,
            "B1",
            "governed",
            "failed expectation(s): currency__column_values_to_be_in_set",
            check="currency__column_values_to_be_in_set",
        ),
    ),
    Case(
        "unicode_text_certified_exactly",
        one_bad(id="Zürich-東京-🙂"),
        lambda o: certified(o, "Zürich-東京-🙂", amount=10.5),
    ),
    Case(
        "leading_zero_ids_stay_text",
        {"part-0001.csv": csv_bytes([{**r, "id": f"00{i}"} for i, r in enumerate(good_rows(4))])},
        certified_without_drift("001"),
    ),
    Case(
        "optional_column_empty_everywhere_is_not_drift",
        {"part-0001.csv": csv_bytes([{**r, "qty": ""} for r in [*good_rows(), row()]])},
        certified_without_drift("B1", qty=None),
    ),
    # -- files and encodings --------------------------------------------------------------------------
    Case(
        "zero_byte_file_is_empty_input",
        {"part-0001.csv": csv_bytes(good_rows()), "empty.csv": b""},
        empty_input_named("empty.csv"),
    ),
    Case(
        "header_only_file_is_empty_input",
        {"part-0001.csv": csv_bytes(good_rows()), "header.csv": csv_bytes([])},
        empty_input_named("header.csv"),
    ),
    Case(
        "empty_input_fail_policy",
        {"part-0001.csv": csv_bytes(good_rows()), "empty.csv": b""},
        fails_with("empty_input", check="raw.empty_input"),
        {"governance": {"empty_input": "fail"}},
    ),
    Case("only_an_empty_file", {"empty.csv": b""}, empty_input_named("empty.csv")),
    Case(
        "utf8_bom_header",
        {"part-0001.csv": b"\xef\xbb\xbf" + csv_bytes([*good_rows(), row()])},
        lambda o: certified(o, amount=10.5),
    ),
    Case(
        "crlf_line_endings",
        {"part-0001.csv": csv_bytes([*good_rows(), row(qty="7")], newline="\r\n")},
        lambda o: certified(o, qty=7),
    ),
    Case(
        "latin1_declared",
        {"part-0001.csv": csv_bytes([*good_rows(), row(id="Zürich")]).decode().encode("latin-1")},
        lambda o: certified(o, "Zürich"),
        {"connector": {"type": "file", "format": "csv", "encoding": "latin-1"}},
    ),
    Case(
        "latin1_bytes_in_utf8_file",
        {"part-0001.csv": csv_bytes([*good_rows(), row(id="Zürich")]).decode().encode("latin-1")},
        read_reject(5, "utf-8"),
    ),
    Case(
        "line_with_extra_field",
        {"part-0001.csv": csv_bytes(good_rows()) + b"B1,10,00,1,2026-11-25T10:00:00Z,2026-11-25,true,USD\n"},
        read_reject(5, "fields", "B1,10,00"),
    ),
    Case(
        "semicolon_delimiter_declared",
        {"part-0001.csv": csv_bytes([*good_rows(), row(amount="3.25")], sep=";")},
        lambda o: certified(o, amount=3.25),
        {"connector": {"type": "file", "format": "csv", "delimiter": ";"}},
    ),
    Case(
        "duplicate_header_names",
        {"part-0001.csv": b"id,id,amount\n1,2,3\n"},
        fails_with("header names column(s) more than once: id"),
    ),
    # -- drift against the declared schema ------------------------------------------------------------
    Case(
        "added_column_blocks_under_error_policy",
        {"part-0001.csv": csv_bytes([{**r, "coupon": "X"} for r in good_rows()], header=(*HEADER, "coupon"))},
        fails_with("schema_drift", check="raw.schema_drift"),
    ),
    Case(
        "removed_column",
        {"part-0001.csv": csv_bytes(good_rows(), header=tuple(c for c in HEADER if c != "qty"))},
        drift_says("removed: qty", blocked=True),
    ),
    Case(
        "renamed_column_is_named_as_such",
        {
            "part-0001.csv": csv_bytes(
                [{**r, "Amount": r["amount"]} for r in good_rows()],
                header=tuple("Amount" if c == "amount" else c for c in HEADER),
            )
        },
        drift_says("renamed: amount → Amount", blocked=True),
    ),
    Case(
        "renamed_column_mapped_with_from",
        {
            "part-0001.csv": csv_bytes(
                [{**r, "Amount": "5.5"} for r in [*good_rows(), row()]],
                header=tuple("Amount" if c == "amount" else c for c in HEADER),
            )
        },
        lambda o: certified(o, amount=5.5),
        {"schema": {"amount": {"from": "Amount"}}},
    ),
    Case(
        "column_of_unparsable_text_months_loses_everything_and_fails",
        {"part-0001.csv": csv_bytes([{**r, "ts": "Jan 1 2000"} for r in good_rows(4)])},
        everything_lost_fails,
        {"governance": {"schema_drift": "warn"}},
    ),
    Case(
        "same_data_with_its_format_declared",
        {"part-0001.csv": csv_bytes([{**r, "ts": "Nov 25 2026"} for r in good_rows(4)])},
        all_certified_with_declared_format,
        {"schema": {"ts": {"format": "%b %d %Y"}}},
    ),
    # -- governance policies --------------------------------------------------------------------------
    Case(
        "row_loss_guard_refuses_certification",
        {"part-0001.csv": csv_bytes([*good_rows(1), *[row(id=f"B{i}", currency="XXX") for i in range(3)]])},
        guard_refuses,
    ),
    Case(
        "row_loss_guard_threshold_is_a_setting",
        {"part-0001.csv": csv_bytes([*good_rows(1), *[row(id=f"B{i}", currency="XXX") for i in range(3)]])},
        guard_setting,
        {"governance": {"min_retained_fraction": 0.2}},
    ),
    Case(
        "parse_error_fail_policy_names_column_and_text",
        one_bad(amount="abc"),
        fails_with("amount: 1 value(s) are not a number", "'abc'", "on_parse_error: fail"),
        {"governance": {"on_parse_error": "fail"}},
    ),
    Case(
        "late_arrival_flagged_by_default",
        one_bad(ts="2013-01-01T09:00:00Z"),
        certified_and_flagged("clean.late_arrival", ts=pd.Timestamp("2013-01-01T09:00:00Z")),
    ),
    Case(
        "late_arrival_quarantined_by_policy",
        one_bad(ts="2013-01-01T09:00:00Z"),
        lambda o: quarantined_with(
            o,
            "B1",
            "clean",
            f"ts 2013-01-01T09:00:00Z is outside partition {PARTITION} by more than late_arrival.tolerance 1d",
            rule="late_arrival",
        ),
        {"governance": {"late_arrival": {"action": "quarantine"}}},
    ),
    Case(
        "late_arrival_within_tolerance", one_bad(ts="2026-11-24T22:00:00Z"), certified_and_passing("clean.late_arrival")
    ),
    Case(
        "superseded_duplicate_is_quarantined_with_its_key",
        {"part-0001.csv": csv_bytes([*good_rows(), row(amount="1"), row(amount="2", ts=f"{PARTITION}T11:00:00Z")])},
        latest_version_kept,
        {"cleaning": [{"rule": "deduplicate"}]},
    ),
    Case(
        "gx_cannot_compare_timestamp_with_text_bound_blocks",
        one_bad(),
        fails_with("not certified", "could not be evaluated", check="clean.ts__column_values_to_be_between"),
        {
            "expectations": [
                {
                    "expectation": "expect_column_values_to_be_between",
                    "kwargs": {"column": "ts", "min_value": "2026-01-01"},
                }
            ]
        },
    ),
    Case(
        "gx_strftime_on_typed_column_blocks",
        one_bad(),
        fails_with("must be of type string", check="clean.ts__column_values_to_match_strftime_format"),
        {
            "expectations": [
                {
                    "expectation": "expect_column_values_to_match_strftime_format",
                    "kwargs": {"column": "ts", "strftime_format": "%Y"},
                }
            ]
        },
    ),
    Case(
        "gx_error_at_warn_severity_does_not_certify_silently",
        one_bad(),
        gx_error_warns_with_error_severity,
        {
            "expectations": [
                {
                    "expectation": "expect_column_values_to_match_strftime_format",
                    "kwargs": {"column": "ts", "strftime_format": "%Y"},
                    "severity": "warn",
                }
            ]
        },
    ),
    # -- decimals -------------------------------------------------------------------------------------
    Case(
        "decimal_exact",
        one_bad(amount="12345678901.23"),
        lambda o: certified(o, amount=Decimal("12345678901.23")),
        {"schema": {"amount": {"type": "decimal(14, 2)"}}},
    ),
    Case(
        "decimal_too_many_fraction_digits",
        one_bad(amount="1.234"),
        parse_quarantine(
            "amount",
            "1.234",
            "a decimal(14, 2): at most 12 integer and 2 fraction digits ('.' decimal point, no thousands separator)",
        ),
        {"schema": {"amount": {"type": "decimal(14, 2)"}}},
    ),
    Case(
        "decimal_trailing_zeros_fit",
        one_bad(amount="7.5000"),
        lambda o: certified(o, amount=Decimal("7.50")),
        {"schema": {"amount": {"type": "decimal(14, 2)"}}},
    ),
    Case(
        "decimal_thousands_declared",
        one_bad(amount="1,234.50"),
        lambda o: certified(o, amount=Decimal("1234.50")),
        {"schema": {"amount": {"type": "decimal(14, 2)", "thousands": ","}}},
    ),
    # -- JSON Lines -----------------------------------------------------------------------------------
    Case(
        "jsonl_nested_object_in_json_column",
        {"a.jsonl": jsonl_bytes([*good_rows(), {**row(), "meta": {"b": 1, "a": [1, None]}}])},
        lambda o: certified(o, meta='{"a":[1,null],"b":1}'),
        {"connector": {"type": "file", "format": "jsonl"}, "schema": {"meta": {"type": "json"}}},
    ),
    Case(
        "jsonl_number_in_string_column",
        {"a.jsonl": jsonl_bytes([*good_rows(), {**row(), "id": 12}])},
        lambda o: certified(o, "12"),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    Case(
        "jsonl_pandas_float_in_integer_column",
        {"a.jsonl": jsonl_bytes([*good_rows(), {**row(), "qty": 517.0}])},
        lambda o: certified(o, qty=517),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    Case(
        "jsonl_epoch_number_without_format",
        {"a.jsonl": jsonl_bytes([*good_rows(), {**row(), "ts": EPOCH_TEN}])},
        lambda o: quarantined_with(o, "B1", "raw", f"ts: '{EPOCH_TEN}' is not {ISO_TS}", rule="parse"),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    # JSON omits keys without a value: an optional key in no record is no drift (reported, read as null)...
    Case(
        "jsonl_optional_key_in_no_record",
        {"a.jsonl": jsonl_bytes([{k: v for k, v in r.items() if k != "qty"} for r in [*good_rows(), row()]])},
        lambda o: (certified(o, qty=None), o.passed("raw.schema_drift"), _assert_absent_optional(o, ["qty"])),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    # ...a required one is: its column is gone (drift, blocking here), as a CSV column missing from the header is
    Case(
        "jsonl_required_key_in_no_record",
        {"a.jsonl": jsonl_bytes([{k: v for k, v in r.items() if k != "amount"} for r in [*good_rows(), row()]])},
        drift_says("removed: amount", blocked=True),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    Case(
        "jsonl_truncated_line",
        {"a.jsonl": jsonl_bytes(good_rows()) + b'{"id": "B1", "amount": \n'},
        read_reject(4, "invalid JSON"),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    Case(
        "jsonl_array_line",
        {"a.jsonl": jsonl_bytes(good_rows()) + b"[1, 2]\n"},
        read_reject(4, "expected a JSON object, found list", "[1, 2]"),
        {"connector": {"type": "file", "format": "jsonl"}},
    ),
    # -- Parquet --------------------------------------------------------------------------------------
    Case(
        "parquet_float_in_integer_column",
        {"a.parquet": parquet_bytes(pd.DataFrame([*good_rows(), row()]).assign(qty=[1.0, 2.0, 3.0, 2.7]))},
        lambda o: quarantined_with(o, "B1", "raw", f"qty: '2.7' is not {INTEGER}", rule="parse"),
        {"connector": {"type": "file", "format": "parquet"}},
    ),
    Case(
        "parquet_pandas_float_with_nan_for_integers",
        {"a.parquet": parquet_bytes(pd.DataFrame([*good_rows(), row()]).assign(qty=[517.0, None, 3.0, 4.0]))},
        parquet_nan_integers,
        {"connector": {"type": "file", "format": "parquet"}},
    ),
    Case(
        "parquet_naive_datetime_is_utc",
        {
            "a.parquet": parquet_bytes(
                pd.DataFrame([*good_rows(), row()]).assign(ts=pd.to_datetime([f"{PARTITION} 10:00"] * 4))
            )
        },
        lambda o: certified(o, ts=TEN_UTC),
        {"connector": {"type": "file", "format": "parquet"}},
    ),
    Case(
        "parquet_epoch_ints_need_declared_unit",
        {"a.parquet": parquet_bytes(pd.DataFrame([*good_rows(), row()]).assign(ts=[EPOCH_TEN] * 4))},
        lambda o: certified(o, ts=TEN_UTC),
        {"connector": {"type": "file", "format": "parquet"}, "schema": {"ts": {"format": "epoch_s"}}},
    ),
    Case(
        "parquet_unreadable_file",
        {"a.parquet": b"PAR1 this is not parquet"},
        unreadable_parquet,
        {"connector": {"type": "file", "format": "parquet"}},
    ),
]


@pytest.fixture(scope="module")
def gx() -> GreatExpectationsResource:
    return GreatExpectationsResource()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case(case: Case, tmp_path, gx):
    outcome = run_source(tmp_path, merged(BASE, case.change), case.files, gx)
    case.expect(outcome)
    # Whatever the case, nothing is lost: every landed record is governed or quarantined with a reason.
    if outcome.governed is not None:
        assert outcome.quarantine["_reason"].notna().all()


def test_corpus_is_at_least_sixty_cases():
    from .test_registry_corpus import REGISTRY_CASES

    assert len(CASES) + len(REGISTRY_CASES) >= 60
