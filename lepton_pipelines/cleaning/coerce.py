"""Type landed records to the declared schema — without losing a value, without guessing, without a per-row loop.

Connectors hand over values as they arrived: CSV gives text, JSON/Parquet/SQL give native types. The raw
asset calls :func:`coerce_to_schema` to give every declared column its declared type. A value that does not
parse is never silently null: it is counted per column, its landed text is kept in ``_parse_errors`` (JSON
``{column: landed text}``) and :attr:`CoercionResult.reject_mask` / :meth:`CoercionResult.reject_reasons` say
which rows the column's ``on_parse_error`` policy (quarantine | null | fail) sends to quarantine, with a
reason naming the column, the landed text and what was expected. Blank text is null (no value), not a failure.

Parsing runs on Arrow compute kernels (casts, regex matches, strptime) because ``pd.to_numeric`` and
``Series.map`` cost ~20× more on million-row partitions; JSON is only built for the few rows that failed.

Accepted forms (after trimming surrounding whitespace). Nothing is inferred from the values: a form not
listed here is only read when the column declares it (``contract.spec.ColumnSpec``).

==============  ==================================================================================
integer         ``12``, ``+12``, ``12.0``, ``1e3`` (integral only); ``thousands: ","`` → ``1,234``  → ``Int64``
float           decimal or scientific notation, ``inf``; ``decimal``/``thousands`` as declared     → ``float64``
decimal(p, s)   exact decimal text (or ``Decimal``) with ≤ p-s integer and ≤ s fraction digits → Arrow decimal128
boolean         true/false, t/f, yes/no, y/n, 1/0 (any case), or the declared true/false values    → ``boolean``
timestamp       ISO-8601 (no offset: the column's ``timezone``, default UTC), or the declared
                ``format`` list (strftime patterns, ``iso8601``,
                ``epoch_s``/``epoch_ms``/``epoch_us``)                                         → ``datetime64[ns, UTC]``
date            ``YYYY-MM-DD`` or the declared strftime ``format`` list                          → Arrow ``date32``
                                                                                                 (Parquet DATE)
json            any JSON value (nested objects/arrays as landed, or JSON text)                   → canonical JSON text
string          anything (native values are rendered as text)                                    → ``str``
==============  ==================================================================================

Epoch numbers are read only where a column declares an epoch format: ``20260722`` in a timestamp column
is a parse failure, not 1970-08-23.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lepton_pipelines.cleaning.base import ColumnInfo, TableInfo
from lepton_pipelines.cleaning.support import arrow_text, low_cardinality_text
from lepton_pipelines.connectors.base import LINEAGE_COLUMNS

PARSE_ERRORS_COLUMN = "_parse_errors"  # JSON {column: landed text} for rows with unparseable values

TIMESTAMP_DTYPE = "datetime64[ns, UTC]"
DATE_DTYPE = pd.ArrowDtype(pa.date32())

TRUE_TEXT = ("true", "t", "yes", "y", "1")
FALSE_TEXT = ("false", "f", "no", "n", "0")
ISO_FORMAT = "iso8601"
EPOCH_UNITS = {"epoch_s": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}

_INTEGER_TEXT = r"^[+-]?\d+$"
_DECIMAL_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FLOAT_TEXT = r"(?i)^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan))$"
_EPOCH_TEXT = r"^[+-]?\d+(\.\d+)?$"
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}([T ]00:00(:00(\.0+)?)?)?$"
_OFFSET_TEXT = r"(?i)(?:z|[+-]\d{2}(?::?\d{2})?)$"
# Epoch seconds representable as datetime64[ns] (about 1677-09-21 .. 2262-04-11).
_EPOCH_SECONDS_LIMIT = 9.2e9
_INT64_LIMIT = 2.0**63
_MAX_SHOWN_TEXT = 200  # landed text quoted in a reason is cut here


@dataclass
class CoercionResult:
    frame: pd.DataFrame  # declared columns typed, lineage columns, then _parse_errors
    parse_failures: dict[str, int] = field(default_factory=dict)  # column → values that failed to parse
    missing_columns: list[str] = field(default_factory=list)  # declared but absent: added as all-null
    extra_columns: list[str] = field(default_factory=list)  # landed but undeclared (not kept: see landing)
    failed_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # column → failing rows
    # column → the landed values that failed, indexed by row position (only those: the whole landed
    # column would stay alive as long as this result)
    failed_text: dict[str, pd.Series] = field(default_factory=dict, repr=False)
    non_null: dict[str, int] = field(default_factory=dict)  # column with failures → landed values that were not blank
    policies: dict[str, str] = field(default_factory=dict)  # column → on_parse_error
    expected: dict[str, str] = field(default_factory=dict)  # column → what a value should look like

    @property
    def rows_with_parse_errors(self) -> int:
        return int(self.frame[PARSE_ERRORS_COLUMN].notna().sum())

    @property
    def failing_policy_columns(self) -> list[str]:
        """Columns with ``on_parse_error: fail`` that had a value fail: the run must stop."""
        return [c for c, n in self.parse_failures.items() if n and self.policies.get(c) == "fail"]

    def reject_mask(self, required: set[str] = frozenset()) -> np.ndarray:
        """Rows to quarantine: a failure in a ``quarantine`` column, or in a required column (a value
        that did not parse cannot make a required value null, whatever the policy says)."""
        mask = np.zeros(len(self.frame), dtype=bool)
        for column, failed in self.failed_masks.items():
            if self.policies.get(column) == "quarantine" or column in required:
                mask |= failed
        return mask

    def reject_reasons(self, positions: np.ndarray) -> list[str]:
        """One reason per row position: every column of that row whose value failed, its text and what
        was expected, e.g. ``amount: '12,50' is not a number ('.' decimal point, no thousands separator)``."""
        reasons: list[list[str]] = [[] for _ in range(len(positions))]
        for column, failed in self.failed_masks.items():
            hits = failed[positions]
            if not hits.any():
                continue
            texts = self.failed_text[column].loc[positions[hits]].tolist()
            for slot, text in zip(np.flatnonzero(hits), texts, strict=True):
                reasons[slot].append(f"{column}: {_shown(text)} is not {self.expected[column]}")
        return ["; ".join(r) for r in reasons]

    def report(self) -> dict[str, Any]:
        """A JSON-able summary for asset metadata."""
        return {
            "rows": len(self.frame),
            "parse_failures": dict(self.parse_failures),
            "rows_with_parse_errors": self.rows_with_parse_errors,
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
        }


def coerce_to_schema(records: pd.DataFrame, table: TableInfo, consume: bool = False) -> CoercionResult:
    """Give each declared column its declared type; count and keep (never drop) what does not parse.

    A column is looked up by its landed name (``from:``) and comes out under its declared name. Landed
    columns that are not declared are reported in ``extra_columns`` and not kept: the raw zone has one
    schema across partitions, and the landing zone keeps the files as delivered.

    ``consume``: delete each landed column from ``records`` once it is typed, so a partition's landed
    text and its typed table are never both whole in memory; for a caller that is done with ``records``.
    """
    landed_names = {c.source_name for c in table.columns}
    index = records.index
    extra = [
        c for c in records.columns if c not in landed_names and c not in LINEAGE_COLUMNS and c != PARSE_ERRORS_COLUMN
    ]
    columns: dict[str, pd.Series] = {}
    result = CoercionResult(frame=pd.DataFrame(), extra_columns=extra)
    for column in table.columns:
        result.policies[column.name] = column.on_parse_error
        result.expected[column.name] = expected_form(column)
        if column.source_name not in records.columns:
            result.missing_columns.append(column.name)
            columns[column.name] = _all_null(column, index)
            continue
        values = records[column.source_name]
        parsed, failed = _PARSERS[column.kind](values, column)
        columns[column.name] = pd.Series(parsed, index=index, name=column.name)
        if failed is not None and failed.any():
            # landed values that were not blank, for drift's "mostly unparsable" judgement; only needed
            # (and only paid for) where something failed
            result.non_null[column.name] = int(len(values) - _blank_count(values))
            result.failed_masks[column.name] = failed
            where = np.flatnonzero(failed)  # the failing values' text goes to _parse_errors and the reasons
            result.failed_text[column.name] = pd.Series(values.iloc[where].tolist(), index=where, dtype=object)
            result.parse_failures[column.name] = int(failed.sum())
        del values, parsed
        if consume:
            del records[column.source_name]
    for name in LINEAGE_COLUMNS:
        if name in records.columns:
            columns[name] = records[name]
    columns[PARSE_ERRORS_COLUMN] = _parse_error_json(result.failed_masks, result.failed_text, index)
    result.frame = pd.DataFrame(columns, index=index, copy=False)  # column by column: no consolidated 2-D copy
    return result


def expected_form(column: ColumnInfo) -> str:
    """What a value of ``column`` must look like, in the words a quarantine reason uses."""
    options = column.parse
    separators = f"'{options.decimal}' decimal point" + (
        f", '{options.thousands}' thousands separator" if options.thousands else ", no thousands separator"
    )
    kind = column.kind
    if kind == "integer":
        return "an integer" + (
            f" ('{options.thousands}' thousands separator)" if options.thousands else " (no thousands separator)"
        )
    if kind == "float":
        return f"a number ({separators})"
    if kind == "decimal":
        precision, scale = _precision_scale(column.type)
        return (
            f"a decimal({precision}, {scale}): at most {precision - scale} integer and {scale} fraction digits "
            f"({separators})"
        )
    if kind == "boolean":
        true_values = options.true_values if options.true_values is not None else TRUE_TEXT
        false_values = options.false_values if options.false_values is not None else FALSE_TEXT
        return f"a boolean (true: {'/'.join(true_values)}; false: {'/'.join(false_values)})"
    if kind in ("timestamp", "date"):
        formats = options.formats or (ISO_FORMAT,)
        shown = " or ".join("ISO-8601" if f == ISO_FORMAT else f for f in formats)
        zone = f", naive times in {options.timezone}" if kind == "timestamp" and options.timezone != "UTC" else ""
        return f"a {kind} ({shown}{zone})"
    if kind == "json":
        return "valid JSON"
    return kind


# --- parsers: (landed values, column) → (typed values, boolean mask of failures or None) --------------

Parsed = tuple[Any, np.ndarray | None]


def _parse_string(values: pd.Series, column: ColumnInfo) -> Parsed:
    return low_cardinality_text(values.astype("str")), None


def _parse_float(values: pd.Series, column: ColumnInfo) -> Parsed:
    if _is_numeric(values):
        return values.astype("float64"), None
    landed = _as_text(values)
    if _plain_numbers(column):
        try:  # the common case: every value is a number as landed (no blanks, no padding)
            parsed = pc.cast(landed, pa.float64())
            return parsed.to_numpy(), _failed(landed, parsed)
        except pa.ArrowInvalid:
            pass
    trimmed = _trim(landed)
    parsed = _cast_matching(_normalize_number_text(trimmed, column), _FLOAT_TEXT, pa.float64())
    return parsed.to_numpy(), _failed(trimmed, parsed)


def _parse_integer(values: pd.Series, column: ColumnInfo) -> Parsed:
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64"), None
    if _is_numeric(values):
        floats = values.astype("float64")
        integral = np.isfinite(floats) & (floats == np.round(floats)) & (np.abs(floats) < _INT64_LIMIT)
        failed = (floats.notna() & ~integral).to_numpy()
        return floats.where(integral).astype("Int64"), failed
    landed = _as_text(values)
    if _plain_numbers(column):
        try:  # the common case: clean integer text as landed
            parsed = pc.cast(landed, pa.int64())
            return pd.Int64Dtype().__from_arrow__(parsed), _failed(landed, parsed)
        except pa.ArrowInvalid:
            pass
    trimmed = _trim(landed)
    text = _normalize_number_text(trimmed, column)
    try:
        parsed = pc.cast(text, pa.int64())
    except pa.ArrowInvalid:
        parsed = _integer_from_mixed_text(text)
    return pd.Int64Dtype().__from_arrow__(parsed), _failed(trimmed, parsed)


def _integer_from_mixed_text(text: pa.Array) -> pa.Array:
    """Plain digits cast exactly (no float rounding of big ids); ``12.0``/``1e3`` go through float."""
    unsigned = pc.replace_substring_regex(text, r"^\+", "")
    digits = pc.if_else(pc.match_substring_regex(unsigned, _INTEGER_TEXT), unsigned, pa.scalar(None, pa.large_string()))
    too_long = pc.greater(pc.utf8_length(pc.replace_substring_regex(digits, r"^-", "")), 18)
    exact = pc.cast(pc.if_else(too_long, pa.scalar(None, pa.large_string()), digits), pa.int64())
    floats = _cast_matching(text, _DECIMAL_TEXT, pa.float64())
    integral = pc.and_(pc.equal(floats, pc.round(floats)), pc.less(pc.abs(floats), _INT64_LIMIT))
    from_float = pc.cast(pc.if_else(integral, floats, pa.scalar(None, pa.float64())), pa.int64())
    return pc.coalesce(exact, from_float)


def _parse_decimal(values: pd.Series, column: ColumnInfo) -> Parsed:
    """Exact: text (or ``Decimal``) → decimal128(p, s). Never through float; a value with more fraction
    digits than the scale, or more integer digits than p - s, fails instead of being rounded."""
    precision, scale = _precision_scale(column.type)
    target = pa.decimal128(precision, scale)
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_decimal(values.dtype.pyarrow_dtype):
        values = values.astype("str")
    rendered = (
        values.map(_decimal_text, na_action="ignore") if values.dtype == object or _is_numeric(values) else values
    )
    trimmed = _trim(_as_text(rendered))
    text = _normalize_number_text(trimmed, column, exponent=False)
    # canonical form: sign, integer digits without leading zeros, fraction without trailing zeros
    text = pc.replace_substring_regex(text, r"^\+", "")
    text = pc.replace_substring_regex(text, r"^(-?)\.", r"\10.")
    text = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    shaped = pc.match_substring_regex(text, r"^-?\d+(\.\d+)?$")
    integer_digits = pc.utf8_length(
        pc.replace_substring_regex(pc.replace_substring_regex(text, r"^-?0*", ""), r"\..*$", "")
    )
    fraction_digits = pc.subtract(pc.utf8_length(pc.replace_substring_regex(text, r"^[^.]*\.?", "")), 0)
    fits = pc.and_(
        shaped, pc.and_(pc.less_equal(integer_digits, precision - scale), pc.less_equal(fraction_digits, scale))
    )
    candidate = pc.if_else(fits, text, pa.scalar(None, text.type))
    parsed = pc.cast(candidate, target)
    return pd.arrays.ArrowExtensionArray(parsed), _failed(trimmed, parsed)


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # no exponent: 1E+3 → 1000
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # the float's shortest round-trip text, not its binary expansion
    return value


def _parse_boolean(values: pd.Series, column: ColumnInfo) -> Parsed:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), None
    options = column.parse
    if _is_numeric(values) and options.true_values is None:
        numbers = values.astype("float64")
        known = numbers.isin([0.0, 1.0])
        return (numbers == 1.0).astype("boolean").where(known, pd.NA), (numbers.notna() & ~known).to_numpy()
    text = _trimmed_text(values)
    lowered = pc.utf8_lower(text)
    true_values = tuple(v.lower() for v in (options.true_values if options.true_values is not None else TRUE_TEXT))
    false_values = tuple(v.lower() for v in (options.false_values if options.false_values is not None else FALSE_TEXT))
    is_true = pc.is_in(lowered, value_set=pa.array(true_values, pa.large_string()))
    is_false = pc.is_in(lowered, value_set=pa.array(false_values, pa.large_string()))
    parsed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    return pd.BooleanDtype().__from_arrow__(parsed), _failed(text, parsed)


def _parse_timestamp(values: pd.Series, column: ColumnInfo) -> Parsed:
    options = column.parse
    formats = options.formats or (ISO_FORMAT,)
    zone = options.timezone
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE), None
    if pd.api.types.is_datetime64_dtype(values.dtype):  # naive: wall-clock time in the declared zone
        local = values.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        return local.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE).array, (values.notna() & local.isna()).to_numpy()
    epoch = next((EPOCH_UNITS[f] for f in formats if f in EPOCH_UNITS), None)
    if _is_numeric(values):
        numbers = values.astype("float64").to_numpy()
        if epoch is None:  # a number is not a time unless the column says which epoch unit it counts
            return _utc_from_nanos(
                np.zeros(len(numbers), dtype="int64"), np.zeros(len(numbers), dtype=bool)
            ), ~np.isnan(numbers)
        nanos, ok = _epoch_to_nanos(numbers, epoch)
        return _utc_from_nanos(nanos, ok), ~np.isnan(numbers) & ~ok
    landed = _as_text(values)
    if formats == (ISO_FORMAT,) and zone == "UTC":
        try:  # fast path: every value is ISO-8601 as landed (what most exports and APIs emit)
            parsed = pc.cast(landed, pa.timestamp("ns", "UTC"))
            return parsed.to_pandas().astype(TIMESTAMP_DTYPE).array, _failed(landed, parsed)
        except pa.ArrowInvalid:
            pass
    text = _trim(landed)
    present = _mask(pc.is_valid(text))
    nanos = np.zeros(len(text), dtype="int64")
    ok = np.zeros(len(text), dtype=bool)
    for form in formats:
        todo = present & ~ok
        if not todo.any():
            break
        if form == ISO_FORMAT:
            got, got_ok = _iso_to_nanos(text, todo, zone)
        elif form in EPOCH_UNITS:
            got, got_ok = _epoch_to_nanos(
                _cast_matching(text, _EPOCH_TEXT, pa.float64()).to_numpy(zero_copy_only=False), EPOCH_UNITS[form]
            )
        else:
            got, got_ok = _strptime_to_nanos(text, form, zone)
        new = todo & got_ok
        nanos[new] = got[new]
        ok |= new
    return _utc_from_nanos(nanos, ok), present & ~ok


def _parse_date(values: pd.Series, column: ColumnInfo) -> Parsed:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        wall_clock = values.dt.tz_localize(None) if isinstance(values.dtype, pd.DatetimeTZDtype) else values
        at_midnight = (wall_clock == wall_clock.dt.normalize()).to_numpy()
        days = pa.array(wall_clock.where(at_midnight).to_numpy(dtype="datetime64[D]"), pa.date32())
        return pd.arrays.ArrowExtensionArray(days), (wall_clock.notna().to_numpy() & ~at_midnight)
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_date(values.dtype.pyarrow_dtype):
        return pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(values.array, pa.date32())])), None
    text = _trimmed_text(values)
    present = _mask(pc.is_valid(text))
    days = np.zeros(len(text), dtype="int64")
    ok = np.zeros(len(text), dtype=bool)
    for form in column.parse.formats or (ISO_FORMAT,):
        todo = present & ~ok
        if not todo.any():
            break
        if form == ISO_FORMAT:
            shaped = pc.match_substring_regex(text, _DATE_TEXT)
            candidate = pc.if_else(shaped, pc.utf8_slice_codeunits(text, 0, 10), pa.scalar(None, pa.large_string()))
            form = "%Y-%m-%d"
        else:
            candidate = text
        stamps = pd.to_datetime(pd.Series(candidate.to_pandas(), dtype="str"), format=form, errors="coerce")
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_localize(None)
        stamps = stamps.astype("datetime64[ns]")
        got_ok = (stamps.notna() & (stamps == stamps.dt.normalize())).to_numpy()  # a date has no time of day
        new = todo & got_ok
        days[new] = stamps[new].to_numpy().astype("datetime64[D]").view("int64")
        ok |= new
    array = pa.array(days.astype("int32"), pa.int32(), mask=~ok).cast(pa.date32())
    return pd.arrays.ArrowExtensionArray(pa.chunked_array([array])), present & ~ok


def _parse_json(values: pd.Series, column: ColumnInfo) -> Parsed:
    """Nested values as landed (dict/list from JSON/HTTP) or JSON text → canonical JSON text."""
    out: list[Any] = []
    failed = np.zeros(len(values), dtype=bool)
    for position, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(None)
            continue
        if isinstance(value, str):
            if not value.strip():
                out.append(None)
                continue
            try:
                value = json.loads(value)
            except ValueError:
                out.append(None)
                failed[position] = True
                continue
        elif isinstance(value, np.generic):
            value = value.item()
        try:
            out.append(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError):
            out.append(None)
            failed[position] = True
    return pd.array(out, dtype="str"), failed


_PARSERS: dict[str, Callable[[pd.Series, ColumnInfo], Parsed]] = {
    "string": _parse_string,
    "integer": _parse_integer,
    "float": _parse_float,
    "decimal": _parse_decimal,
    "boolean": _parse_boolean,
    "timestamp": _parse_timestamp,
    "date": _parse_date,
    "json": _parse_json,
}


# --- helpers -------------------------------------------------------------------------------------------


def _all_null(column: ColumnInfo, index: pd.Index) -> pd.Series:
    kind = column.kind
    if kind == "decimal":
        return pd.Series(
            pd.arrays.ArrowExtensionArray(pa.nulls(len(index), pa.decimal128(*_precision_scale(column.type)))),
            index=index,
        )
    if kind == "date":
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.nulls(len(index), pa.date32())), index=index)
    dtypes = {
        "string": "str",
        "json": "str",
        "integer": "Int64",
        "float": "float64",
        "boolean": "boolean",
        "timestamp": TIMESTAMP_DTYPE,
    }
    return pd.Series(pd.NA if kind in ("integer", "boolean") else None, index=index, dtype=dtypes[kind])


def _precision_scale(column_type: str) -> tuple[int, int]:
    precision, scale = column_type[len("decimal(") : -1].split(",")
    return int(precision), int(scale)


def _blank_count(values: pd.Series) -> int:
    """Landed values that are no value at all: null, or text that is empty once trimmed."""
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        text = _trim(_as_text(values))
        return int(text.null_count)
    return int(values.isna().sum())


def _plain_numbers(column: ColumnInfo) -> bool:
    return column.parse.decimal == "." and column.parse.thousands is None


def _normalize_number_text(text: pa.ChunkedArray, column: ColumnInfo, exponent: bool = True) -> pa.ChunkedArray:
    """Declared separators → plain digits with ``.``; a grouping that is not every three digits fails
    (``12,34`` is not a number with ``,`` thousands) instead of being read as 1234."""
    options = column.parse
    if _plain_numbers(column):
        return text
    thousands = options.thousands
    decimal = re.escape(options.decimal)
    if thousands:
        group = re.escape(thousands)
        grouped = (
            rf"^[+-]?(\d{{1,3}}({group}\d{{3}})+|\d+)({decimal}\d*)?" + (r"([eE][+-]?\d+)?" if exponent else "") + "$"
        )
        text = pc.if_else(pc.match_substring_regex(text, grouped), text, pa.scalar(None, text.type))
        text = pc.replace_substring(text, thousands, "")
    if options.decimal != ".":
        text = pc.if_else(
            pc.match_substring(text, "."), pa.scalar(None, text.type), text
        )  # '.' is not this column's decimal point
        text = pc.replace_substring(text, options.decimal, ".")
    return text


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= _MAX_SHOWN_TEXT else text[:_MAX_SHOWN_TEXT] + "…")


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def _as_text(values: pd.Series) -> pa.ChunkedArray:
    """Landed values as Arrow ``large_string``, read in place when the connector handed over Arrow text
    (``support.arrow_text``); native values (JSON numbers, dates) rendered with ``str``."""
    array = arrow_text(values if isinstance(values.dtype, pd.StringDtype) else values.astype("str"))
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def _trim(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Surrounding whitespace removed; blank text is null (no value, not a parse failure)."""
    trimmed = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.large_string()), trimmed)


def _trimmed_text(values: pd.Series) -> pa.ChunkedArray:
    return _trim(_as_text(values))


def _cast_matching(text: pa.Array, pattern: str, target: pa.DataType) -> pa.Array:
    """Cast only the values shaped like ``pattern``; the rest become null (counted as failures)."""
    shaped = pc.match_substring_regex(text, pattern)
    return pc.cast(pc.if_else(shaped, text, pa.scalar(None, text.type)), target)


def _failed(text: pa.Array, parsed: pa.Array) -> np.ndarray:
    return _mask(pc.and_(pc.is_valid(text), pc.is_null(parsed)))


def _mask(condition: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(condition, False).to_numpy(), dtype=bool)


def _epoch_to_nanos(numbers: np.ndarray, per_second: int) -> tuple[np.ndarray, np.ndarray]:
    seconds = numbers / per_second
    ok = np.isfinite(seconds) & (np.abs(seconds) < _EPOCH_SECONDS_LIMIT)
    nanos = np.zeros(len(seconds), dtype="int64")
    nanos[ok] = np.round(numbers[ok] * (1e9 / per_second)).astype("int64")
    return nanos, ok


def _iso_to_nanos(text: pa.ChunkedArray, todo: np.ndarray, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """ISO-8601 text; with an offset (or Z) it says its own zone, without one it is wall-clock time in
    ``zone`` (times that do not exist or are ambiguous there fail rather than being shifted)."""
    values = pd.Series(text.to_pandas(), dtype="str").where(todo)
    has_offset = values.str.contains(_OFFSET_TEXT, regex=True, na=False).to_numpy()
    nanos = np.zeros(len(values), dtype="int64")
    ok = np.zeros(len(values), dtype=bool)
    if has_offset.any():
        stamps = pd.to_datetime(values.where(has_offset), utc=True, errors="coerce", format="ISO8601")
        good = _in_nanosecond_range(stamps) & has_offset
        nanos[good] = stamps[good].dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("int64")
        ok |= good
    naive = todo & ~has_offset
    if naive.any():
        stamps = pd.to_datetime(values.where(naive), errors="coerce", format="ISO8601")
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # a mix pandas resolved with offsets: not naive
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = (
            stamps.astype("datetime64[ns]")
            .dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            .dt.tz_convert("UTC")
        )
        good = _in_nanosecond_range(stamps) & naive
        nanos[good] = stamps[good].dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("int64")
        ok |= good
    return nanos, ok


def _strptime_to_nanos(text: pa.ChunkedArray, pattern: str, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """A declared strftime pattern (``%z`` in it: the text carries its offset; else wall-clock in ``zone``).

    pandas' strptime rather than Arrow's: Arrow's (the C library's) accepts ``Feb 29 2001`` and rolls it
    over to March 1st; pandas rejects a day the month does not have."""
    values = pd.Series(text.to_pandas(), dtype="str")
    series = pd.to_datetime(values, format=pattern, errors="coerce", utc="%z" in pattern)
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.astype("datetime64[ns]").dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    series = series.dt.tz_convert("UTC")
    good = _in_nanosecond_range(series)
    nanos = np.zeros(len(series), dtype="int64")
    nanos[good] = series[good].dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("int64")
    return nanos, good


def _in_nanosecond_range(stamps: pd.Series) -> np.ndarray:
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        low, high = low.tz_localize(None), high.tz_localize(None)
    return (stamps.notna() & (stamps >= low) & (stamps <= high)).to_numpy()


def _utc_from_nanos(nanos: np.ndarray, ok: np.ndarray) -> pd.Series:
    stamps = np.where(ok, nanos, np.iinfo("int64").min).view("datetime64[ns]")  # int64 min is NaT
    return pd.Series(stamps).dt.tz_localize("UTC").array


def _parse_error_json(failures: dict[str, np.ndarray], originals: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """JSON of the original text per failing row; built only for failing rows, null elsewhere.

    The column is assembled in Arrow (a take from the few JSON texts, null where a row parsed): setting
    a few thousand values into a million-row pandas text column one by one costs ~10x more.
    """
    if not failures:
        return pd.Series(pa.nulls(len(index), pa.large_string()).to_pandas().array, index=index)
    per_row: dict[int, dict[str, str]] = {}
    for name, mask in failures.items():
        positions = np.flatnonzero(mask)
        for position, value in zip(positions, originals[name].loc[positions].tolist(), strict=True):
            per_row.setdefault(int(position), {})[name] = value if isinstance(value, str) else str(value)
    positions = np.fromiter(per_row.keys(), dtype="int64", count=len(per_row))
    texts = pa.array([json.dumps(per_row[p], ensure_ascii=False, sort_keys=True) for p in per_row], pa.large_string())
    slots = np.full(len(index), -1, dtype=np.int64)
    slots[positions] = np.arange(len(positions))
    column = texts.take(pa.array(slots, mask=slots < 0))
    return pd.Series(column.to_pandas().array, index=index)
