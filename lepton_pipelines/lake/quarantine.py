"""The quarantine zone: every row that could not be certified, with the reason, never silently dropped.

One schema for every stage and every source, so any engine reads a source's whole quarantine as one table
(``read_parquet('<lake>/quarantine/<source>/*/*.parquet', hive_partitioning=true)`` in DuckDB,
``pyarrow.dataset`` with Hive partitioning) without ``union_by_name``:

==================  ===========================================================================
``_stage``          where the row left the pipeline: ``landing`` (MQTT payloads), ``raw`` (lines that
                    are no record, values that do not parse), ``clean`` (cleaning rules, superseded
                    duplicates, required values, late arrivals), ``governed`` (failed expectations)
``_reason``         why, in words a person can act on (column, landed text, what was expected)
``_rule``           the cleaning or contract rule that removed it (``read``, ``parse``, ``deduplicate``,
                    ``required``, ``late_arrival``, ``valid_range`` ...), else null
``_check``          the expectation check(s) it failed (comma-separated), else null
``_source_file``    the landing file, URL page or query it came from
``_source_line``    its line / record number there (int64, null when unknown)
``_raw``            the landed text of the record (a line, a JSON payload), when there is one
then the source's declared columns, as text (what landed, or the typed value rendered as text).
==================  ===========================================================================

Each stage owns one file per partition (``<stage>.parquet``), so stages never overwrite each other and
re-running a stage replaces only its own rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lepton_pipelines.lake.store import Lake, WriteResult, write_parquet_atomic

STAGE_COLUMN = "_stage"
REASON_COLUMN = "_reason"
RULE_COLUMN = "_rule"
CHECK_COLUMN = "_check"
FILE_COLUMN = "_source_file"
LINE_COLUMN = "_source_line"
RAW_COLUMN = "_raw"
QUARANTINE_COLUMNS = (STAGE_COLUMN, REASON_COLUMN, RULE_COLUMN, CHECK_COLUMN, FILE_COLUMN, LINE_COLUMN, RAW_COLUMN)
STAGES = ("landing", "raw", "clean", "governed")


def quarantine_frame(
    stage: str,
    rows: pd.DataFrame,
    columns: Sequence[str],
    reason: Any,
    rule: Any = None,
    check: Any = None,
    raw: Any = None,
) -> pd.DataFrame:
    """``rows`` in the quarantine schema: the fixed columns, then ``columns`` (the source's declared
    columns) as text. ``reason``/``rule``/``check``/``raw``: one value for all rows, or one per row.
    ``rows`` may carry ``_source_file``/``_source_line``; declared columns it lacks are null."""
    if stage not in STAGES:
        raise ValueError(f"quarantine stage {stage!r}: expected one of {', '.join(STAGES)}")
    n = len(rows)
    out: dict[str, Any] = {
        STAGE_COLUMN: _text_column(stage, n),
        REASON_COLUMN: _text_column(reason, n),
        RULE_COLUMN: _text_column(rule, n),
        CHECK_COLUMN: _text_column(check, n),
        FILE_COLUMN: as_text(rows[FILE_COLUMN]) if FILE_COLUMN in rows.columns else _text_column(None, n),
        LINE_COLUMN: pd.array(rows[LINE_COLUMN].to_numpy(dtype="float64", na_value=np.nan), dtype="Int64")
        if LINE_COLUMN in rows.columns
        else pd.array([pd.NA] * n, dtype="Int64"),
        RAW_COLUMN: _text_column(raw, n),
    }
    for name in columns:
        out[name] = as_text(rows[name]) if name in rows.columns else _text_column(None, n)
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    if frame[REASON_COLUMN].isna().any():
        raise ValueError(f"quarantine rows of stage {stage!r} without a reason: every quarantined row says why")
    return frame


def as_text(values: pd.Series) -> pd.Series:
    """Typed values as the text a person would have landed: ISO-8601 times (UTC ``Z``), plain numbers,
    true/false; nulls stay null. Built column-wise (no per-row Python for the common types)."""
    index = pd.RangeIndex(len(values))
    series = values.reset_index(drop=True)
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(series.cat.categories.dtype)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC")
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(r"\.000000Z$", "Z", regex=True)
        return pd.Series(text.where(utc.notna()), index=index, dtype="str")
    if pd.api.types.is_bool_dtype(series.dtype):
        return pd.Series(series.map({True: "true", False: "false"}), index=index, dtype="str")
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_float_dtype(series.dtype):
        text = series.astype("str")
        return pd.Series(text.where(series.notna()), index=index, dtype="str")
    text = series.astype("str")
    return pd.Series(text.where(series.notna()), index=index, dtype="str")


def _text_column(value: Any, n: int) -> pd.Series:
    if isinstance(value, (pd.Series, np.ndarray, list, tuple, pd.Index)):
        values = list(value)
        if len(values) != n:
            raise ValueError(f"quarantine column has {len(values)} values for {n} rows")
        return pd.Series(
            [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], dtype="str"
        )
    return pd.Series([None if value is None else str(value)] * n, dtype="str")


def write_quarantine(
    lake: Lake, source: str, partition_key: str | None, stage: str, rows: pd.DataFrame | None
) -> WriteResult | None:
    """Publish ``rows`` (in the quarantine schema: see ``quarantine_frame``) as this stage's quarantine
    file; an empty frame removes a stale file instead, so a clean re-run of a partition leaves no
    quarantine rows behind from an earlier bad input."""
    folder = lake.table_dir("quarantine", source, partition_key)
    target = folder / f"{stage}.parquet"
    if rows is None or rows.empty:
        if target.exists():
            target.unlink()
        return None
    missing = [c for c in QUARANTINE_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(
            f"quarantine rows for {source}/{stage} lack {', '.join(missing)}: build them with quarantine_frame"
        )
    return write_parquet_atomic(folder, rows, name=f"{stage}.parquet")


def quarantined_rows(lake: Lake, source: str, partition_key: str | None, stage: str | None = None) -> int:
    """Rows in a partition's quarantine — one stage's file, or all stages — read from Parquet footers only."""
    folder = lake.table_dir("quarantine", source, partition_key)
    files = [folder / f"{stage}.parquet"] if stage else (list(folder.glob("*.parquet")) if folder.exists() else [])
    total = 0
    for path in files:
        if path.exists():
            with path.fs.open(path.path, "rb") as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
    return total
