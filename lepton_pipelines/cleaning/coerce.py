"""Type landed records to the declared schema — without losing a value and without a per-row loop.

Connectors hand over values as they arrived: CSV gives text, JSON/Parquet/SQL give native types. The raw
asset calls :func:`coerce_to_schema` to give every declared column its declared type. A value that cannot
be parsed becomes null, is counted per column, and its original text is kept in ``_parse_errors`` (JSON
``{column: original_text}``) so a person can see and replay it; the rest of the row survives.

Parsing runs on Arrow compute kernels (casts, regex matches) because ``pd.to_numeric`` and ``Series.map``
cost ~20× more on million-row partitions; JSON is only built for the few rows that failed.

Accepted forms (after trimming surrounding whitespace; blank text is null, not a failure):

==========  =====================================================================================
integer     ``12``, ``+12``, ``12.0``, ``1e3`` (integral values only; ``12.5`` fails)  → ``Int64``
float       decimal or scientific notation, ``inf``, ``nan`` (``nan`` is null)         → ``float64``
boolean     true/false, t/f, yes/no, y/n, 1/0, any case                                → ``boolean``
timestamp   ISO-8601 with or without offset (no offset means UTC), epoch seconds        → ``datetime64[ns, UTC]``
date        ``YYYY-MM-DD`` (optionally ``T00:00[:00]``)                                 → ``datetime64[ns]`` at midnight
string      anything (native values are rendered as text)                               → ``str``
==========  =====================================================================================

``date`` is a naive ``datetime64[ns]`` at midnight rather than Python ``date`` objects: it stays
vectorized for comparisons, sorting and GX checks, and a calendar date has no time zone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lepton_pipelines.cleaning.base import TableInfo
from lepton_pipelines.cleaning.support import arrow_text, low_cardinality_text
from lepton_pipelines.connectors.base import LINEAGE_COLUMNS

PARSE_ERRORS_COLUMN = "_parse_errors"  # JSON {column: original text} for rows with unparseable values

TIMESTAMP_DTYPE = "datetime64[ns, UTC]"
DATE_DTYPE = "datetime64[ns]"

TRUE_TEXT = ("true", "t", "yes", "y", "1")
FALSE_TEXT = ("false", "f", "no", "n", "0")

_INTEGER_TEXT = r"^[+-]?\d+$"
_DECIMAL_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FLOAT_TEXT = r"(?i)^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan))$"
_EPOCH_TEXT = r"^[+-]?\d+(\.\d+)?$"
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}([T ]00:00(:00(\.0+)?)?)?$"
# Epoch seconds representable as datetime64[ns] (about 1677-09-21 .. 2262-04-11).
_EPOCH_SECONDS_LIMIT = 9.2e9
_INT64_LIMIT = 2.0**63


@dataclass
class CoercionResult:
    frame: pd.DataFrame  # declared columns typed, extras as str, lineage columns, then _parse_errors
    parse_failures: dict[str, int] = field(default_factory=dict)  # column → values that failed to parse
    missing_columns: list[str] = field(default_factory=list)  # declared but absent: added as all-null
    extra_columns: list[str] = field(default_factory=list)  # landed but undeclared: kept as str

    @property
    def rows_with_parse_errors(self) -> int:
        return int(self.frame[PARSE_ERRORS_COLUMN].notna().sum())

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

    ``consume``: delete each landed column from ``records`` once it is typed, so a partition's landed
    text and its typed table are never both whole in memory; for a caller that is done with ``records``.
    """
    declared = [c.name for c in table.columns]
    index = records.index
    extra = [c for c in records.columns if c not in declared and c not in LINEAGE_COLUMNS and c != PARSE_ERRORS_COLUMN]
    columns: dict[str, pd.Series] = {}
    failures: dict[str, np.ndarray] = {}  # column → boolean mask of rows whose value failed
    originals: dict[str, pd.Series] = {}
    missing: list[str] = []
    for column in table.columns:
        if column.name not in records.columns:
            missing.append(column.name)
            columns[column.name] = _all_null(column.type, index)
            continue
        values = records[column.name]
        parsed, failed = _PARSERS[column.type](values)
        columns[column.name] = pd.Series(parsed, index=index, name=column.name)
        if failed is not None and failed.any():
            failures[column.name] = failed
            originals[column.name] = values  # the failing values' text goes to _parse_errors
        del values, parsed
        if consume:
            del records[column.name]
    for name in extra:
        columns[name] = records[name].astype("str")
    for name in LINEAGE_COLUMNS:
        if name in records.columns:
            columns[name] = records[name]
    columns[PARSE_ERRORS_COLUMN] = _parse_error_json(failures, originals, index)
    frame = pd.DataFrame(columns, index=index, copy=False)  # column by column: no consolidated 2-D copy
    return CoercionResult(
        frame=frame,
        parse_failures={name: int(mask.sum()) for name, mask in failures.items()},
        missing_columns=missing,
        extra_columns=extra,
    )


# --- parsers: Series of landed values → (typed values, boolean mask of failures or None) ---------------

Parsed = tuple[Any, np.ndarray | None]


def _parse_string(values: pd.Series) -> Parsed:
    return low_cardinality_text(values.astype("str")), None


def _parse_float(values: pd.Series) -> Parsed:
    if _is_numeric(values):
        return values.astype("float64"), None
    landed = _as_text(values)
    try:  # the common case: every value is a number as landed (no blanks, no padding)
        parsed = pc.cast(landed, pa.float64())
        return parsed.to_numpy(), _failed(landed, parsed)
    except pa.ArrowInvalid:
        pass
    text = _trim(landed)
    parsed = _cast_matching(text, _FLOAT_TEXT, pa.float64())
    return parsed.to_numpy(), _failed(text, parsed)


def _parse_integer(values: pd.Series) -> Parsed:
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64"), None
    if _is_numeric(values):
        floats = values.astype("float64")
        integral = np.isfinite(floats) & (floats == np.round(floats)) & (np.abs(floats) < _INT64_LIMIT)
        failed = (floats.notna() & ~integral).to_numpy()
        return floats.where(integral).astype("Int64"), failed
    landed = _as_text(values)
    try:  # the common case: clean integer text as landed
        parsed = pc.cast(landed, pa.int64())
        return pd.Int64Dtype().__from_arrow__(parsed), _failed(landed, parsed)
    except pa.ArrowInvalid:
        pass
    text = _trim(landed)
    try:
        parsed = pc.cast(text, pa.int64())
    except pa.ArrowInvalid:
        parsed = _integer_from_mixed_text(text)
    return pd.Int64Dtype().__from_arrow__(parsed), _failed(text, parsed)


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


def _parse_boolean(values: pd.Series) -> Parsed:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), None
    if _is_numeric(values):
        numbers = values.astype("float64")
        known = numbers.isin([0.0, 1.0])
        return (numbers == 1.0).astype("boolean").where(known, pd.NA), (numbers.notna() & ~known).to_numpy()
    text = _trimmed_text(values)
    lowered = pc.utf8_lower(text)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_TEXT, pa.large_string()))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_TEXT, pa.large_string()))
    parsed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    return pd.BooleanDtype().__from_arrow__(parsed), _failed(text, parsed)


def _parse_timestamp(values: pd.Series) -> Parsed:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE), None
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype(TIMESTAMP_DTYPE), None  # naive means UTC
    if _is_numeric(values):
        nanos, ok = _epoch_seconds_to_nanos(values.astype("float64").to_numpy())
        return _utc_from_nanos(nanos, ok), values.notna().to_numpy() & ~ok
    landed = _as_text(values)
    try:  # fast path: every value is ISO-8601 as landed (what most exports and APIs emit)
        parsed = pc.cast(landed, pa.timestamp("ns", "UTC"))
        return parsed.to_pandas().astype(TIMESTAMP_DTYPE).array, _failed(landed, parsed)
    except pa.ArrowInvalid:
        pass
    text = _trim(landed)
    try:  # the same once padding is trimmed and blanks are null
        parsed = pc.cast(text, pa.timestamp("ns", "UTC"))
        return parsed.to_pandas().astype(TIMESTAMP_DTYPE).array, _failed(text, parsed)
    except pa.ArrowInvalid:
        pass
    epoch = _mask(pc.match_substring_regex(text, _EPOCH_TEXT))
    nanos, ok = _epoch_seconds_to_nanos(_cast_matching(text, _EPOCH_TEXT, pa.float64()).to_numpy())
    ok &= epoch
    iso_text = pd.Series(text.to_pandas(), dtype="str").where(~epoch)
    iso = pd.to_datetime(iso_text, utc=True, errors="coerce", format="ISO8601")
    iso_ok = _in_nanosecond_range(iso)
    nanos[iso_ok] = iso[iso_ok].dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("int64")
    ok |= iso_ok
    return _utc_from_nanos(nanos, ok), _mask(pc.is_valid(text)) & ~ok


def _parse_date(values: pd.Series) -> Parsed:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        wall_clock = values.dt.tz_localize(None) if isinstance(values.dtype, pd.DatetimeTZDtype) else values
        at_midnight = wall_clock == wall_clock.dt.normalize()
        return wall_clock.where(at_midnight).astype(DATE_DTYPE), (wall_clock.notna() & ~at_midnight).to_numpy()
    text = _trimmed_text(values)
    shaped = _mask(pc.match_substring_regex(text, _DATE_TEXT))
    day_text = pd.Series(pc.utf8_slice_codeunits(text, 0, 10).to_pandas(), dtype="str").where(shaped)
    parsed = pd.to_datetime(day_text, format="%Y-%m-%d", errors="coerce").astype(DATE_DTYPE)
    return parsed.array, _mask(pc.is_valid(text)) & parsed.isna().to_numpy()


_PARSERS: dict[str, Callable[[pd.Series], Parsed]] = {
    "string": _parse_string,
    "integer": _parse_integer,
    "float": _parse_float,
    "boolean": _parse_boolean,
    "timestamp": _parse_timestamp,
    "date": _parse_date,
}

_NULL_DTYPES = {
    "string": "str",
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
    "timestamp": TIMESTAMP_DTYPE,
    "date": DATE_DTYPE,
}


# --- helpers -------------------------------------------------------------------------------------------


def _all_null(column_type: str, index: pd.Index) -> pd.Series:
    return pd.Series(pd.NA if column_type in ("integer", "boolean") else None, index=index, dtype=_NULL_DTYPES[column_type])


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


def _epoch_seconds_to_nanos(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(seconds) & (np.abs(seconds) < _EPOCH_SECONDS_LIMIT)
    nanos = np.zeros(len(seconds), dtype="int64")
    nanos[ok] = np.round(seconds[ok] * 1e9).astype("int64")
    return nanos, ok


def _in_nanosecond_range(stamps: pd.Series) -> np.ndarray:
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
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
        for position, value in zip(positions, originals[name].iloc[positions].tolist()):
            per_row.setdefault(int(position), {})[name] = value if isinstance(value, str) else str(value)
    positions = np.fromiter(per_row.keys(), dtype="int64", count=len(per_row))
    texts = pa.array([json.dumps(per_row[p], ensure_ascii=False, sort_keys=True) for p in per_row], pa.large_string())
    slots = np.full(len(index), -1, dtype=np.int64)
    slots[positions] = np.arange(len(positions))
    column = texts.take(pa.array(slots, mask=slots < 0))
    return pd.Series(column.to_pandas().array, index=index)
