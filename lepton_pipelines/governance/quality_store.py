"""Quality history in the lake: ``<lake>/_quality/<source>[/date=<pk>]/``.

``results.parquet``  one row per check and stage (raw, clean, governed) of the latest validation of
                     the partition; the scorecard reads these across partitions.
``gx_result.json``   GX's own validation result (per-row lists trimmed to the sample).
``row_failures.parquet``  positions of rows failing row-level expectations, with the fingerprint of the
                     frame they refer to, so certification quarantines exactly what was validated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from upath import UPath

from lepton_pipelines.lake.store import Lake, partition_dirname, read_parquet_dir, write_parquet_atomic

QUALITY_ROOT = "_quality"
RESULTS_FILE = "results.parquet"
GX_RESULT_FILE = "gx_result.json"
ROW_FAILURES_FILE = "row_failures.parquet"
CLEANING_FILE = "cleaning.json"  # the clean step's reconciliation and column lineage
RESULT_COLUMNS = (
    "source",
    "partition",
    "stage",
    "check_name",
    "expectation",
    "severity",
    "blocking",
    "passed",
    "observed",
    "unexpected_count",
    "unexpected_percent",
    "quarantined",
    "description",
    "validated_at",
)


def quality_dir(lake: Lake, source: str, partition_key: str | None) -> UPath:
    base = lake.path(QUALITY_ROOT, source)
    return base / partition_dirname(partition_key) if partition_key else base


def result_row(source: str, partition_key: str | None, stage: str, **values: Any) -> dict[str, Any]:
    row = {c: None for c in RESULT_COLUMNS}
    row.update(source=source, partition=partition_key or "", stage=stage, validated_at=datetime.now(UTC), **values)
    row["observed"] = None if row["observed"] is None else json.dumps(row["observed"], default=str)
    return row


# Results files held in memory by ``deferred_results``: (lake root, source, partition) → (lake, the file's rows).
_DEFERRED: ContextVar[dict[tuple[str, str, str | None], tuple[Lake, pd.DataFrame]] | None] = ContextVar(
    "lepton_deferred_results", default=None
)


@contextmanager
def deferred_results() -> Iterator[None]:
    """Within the block (on this thread), ``results.parquet`` is read at most once per partition and written once,
    when the block ends — also when it ends with an error, as a step failing after recording its checks leaves them.

    A stage records its checks in two or three ``write_results``/``append_results`` calls, each rewriting the
    partition's file; over a backfill of hundreds of small partitions those rewrites cost more than the rows.
    The file written is the one the calls would have left.
    """
    pending: dict[tuple[str, str, str | None], tuple[Lake, pd.DataFrame]] = {}
    token = _DEFERRED.set(pending)
    try:
        yield
    finally:
        try:
            _DEFERRED.reset(token)
        except ValueError:  # a generator holding the block was closed from another context
            _DEFERRED.set(None)
        for (_, source, partition_key), (lake, frame) in pending.items():
            write_parquet_atomic(quality_dir(lake, source, partition_key), frame, RESULTS_FILE)


def write_results(
    lake: Lake, source: str, partition_key: str | None, stage: str, rows: list[dict[str, Any]], replace: bool = True
) -> None:
    """Replace this stage's rows of the partition (``replace``; else add to them), keeping the other stages' rows."""
    folder = quality_dir(lake, source, partition_key)
    new = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    existing = read_results(lake, source, partition_key)
    if existing is not None:
        existing = existing[existing["stage"] != stage] if replace else existing
        new = pd.concat([existing, new], ignore_index=True) if not existing.empty else new
    new = new.astype(
        {
            "unexpected_count": "Int64",
            "unexpected_percent": "Float64",
            "quarantined": "Int64",
            "passed": "bool",
            "blocking": "bool",
        }
    )
    new["validated_at"] = pd.to_datetime(new["validated_at"], utc=True)
    pending = _DEFERRED.get()
    if pending is not None:
        pending[(lake.url, source, partition_key)] = (lake, new)
        return
    write_parquet_atomic(folder, new, RESULTS_FILE)


def append_results(lake: Lake, source: str, partition_key: str | None, stage: str, rows: list[dict[str, Any]]) -> None:
    """Add rows to this stage's results (checks recorded after the stage's main validation)."""
    write_results(lake, source, partition_key, stage, rows, replace=False)


def read_results(lake: Lake, source: str, partition_key: str | None) -> pd.DataFrame | None:
    pending = _DEFERRED.get()
    if pending is not None and (lake.url, source, partition_key) in pending:
        return pending[(lake.url, source, partition_key)][1].copy()
    path = quality_dir(lake, source, partition_key) / RESULTS_FILE
    return read_parquet_dir(path) if path.exists() else None


def read_history(lake: Lake) -> pd.DataFrame:
    """Every results file in the lake, across sources and partitions."""
    root = lake.path(QUALITY_ROOT)
    if not root.exists():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    files = sorted(p for p in root.glob(f"*/{RESULTS_FILE}")) + sorted(root.glob(f"*/*/{RESULTS_FILE}"))
    frames = [read_parquet_dir(f) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RESULT_COLUMNS))


def write_gx_result(lake: Lake, source: str, partition_key: str | None, payload: dict[str, Any]) -> None:
    folder = quality_dir(lake, source, partition_key)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / GX_RESULT_FILE).write_text(json.dumps(payload, indent=1, default=str))


def frame_fingerprint(frame: pd.DataFrame, columns: list[str]) -> str:
    """Row count and a SHA-256 of ``columns`` (those present), equal for equal values in equal order.

    It ties stored row failures to the exact frame they were computed on, so it runs twice per partition
    on every row: it hashes each column's Arrow buffers in one canonical layout (validity apart, nulls
    filled, string offsets rebased), ~0.15 s per million rows where pandas' per-value hashing of unique
    strings costs ~1 s. A partition read back from Parquet hashes like the frame that was written.
    """
    digest = hashlib.sha256()
    for name in (c for c in columns if c in frame.columns):
        digest.update(name.encode("utf-8"))
        for part in _canonical_buffers(frame[name]):
            digest.update(part)
    return f"{len(frame)}:{digest.hexdigest()[:32]}"


def _canonical_buffers(values: pd.Series) -> Iterator[Any]:
    array = _arrow_values(values)
    yield pc.is_valid(array).to_numpy(zero_copy_only=False)
    if pa.types.is_large_binary(array.type):
        array = pc.fill_null(array, b"") if array.null_count else array
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        yield offsets - offsets[0]
        yield memoryview(array.buffers()[2] or b"")[offsets[0] : offsets[-1]]
    else:
        filler = False if pa.types.is_boolean(array.type) else 0
        array = pc.fill_null(array, pa.scalar(filler, array.type)) if array.null_count else array
        yield np.ascontiguousarray(array.to_numpy(zero_copy_only=False))


def _arrow_values(values: pd.Series) -> pa.Array:
    """Fixed-width values as they are; text and anything else (lists, dicts, decimals) as large binary."""
    try:
        column = pa.Table.from_pandas(values.to_frame(), preserve_index=False).column(0)
    except (pa.ArrowException, TypeError, ValueError):  # mixed or unconvertible cells: hash their text
        column = pa.chunked_array(
            [pa.array(values.astype("str").to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)]
        )
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    fixed_width = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_temporal)
    if any(test(array.type) for test in fixed_width):
        return array
    if not (
        pa.types.is_string(array.type)
        or pa.types.is_large_string(array.type)
        or pa.types.is_binary(array.type)
        or pa.types.is_large_binary(array.type)
        or pa.types.is_string_view(array.type)
    ):
        array = pa.array(values.astype("str").to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    return array.cast(pa.large_binary())


def write_row_failures(
    lake: Lake, source: str, partition_key: str | None, fingerprint: str, failures: dict[str, Any]
) -> None:
    """``failures``: check name → array of row positions."""
    records = [(name, int(pos)) for name, positions in failures.items() for pos in positions]
    frame = pd.DataFrame(records, columns=["check_name", "row"]).astype({"row": "int64"})
    frame["fingerprint"] = fingerprint
    if frame.empty:  # keep the fingerprint even when no row failed
        frame = pd.DataFrame(
            {"check_name": [None], "row": pd.array([None], dtype="Int64"), "fingerprint": [fingerprint]}
        )
    write_parquet_atomic(quality_dir(lake, source, partition_key), frame, ROW_FAILURES_FILE)


def read_row_failures(
    lake: Lake, source: str, partition_key: str | None, fingerprint: str
) -> dict[str, list[int]] | None:
    """The stored failures if they were computed on the frame with this fingerprint, else None."""
    path = quality_dir(lake, source, partition_key) / ROW_FAILURES_FILE
    if not path.exists():
        return None
    frame = read_parquet_dir(path)
    if frame.empty or frame["fingerprint"].iloc[0] != fingerprint:
        return None
    frame = frame.dropna(subset=["check_name"])
    return {name: group["row"].astype("int64").tolist() for name, group in frame.groupby("check_name")}


def write_json(lake: Lake, source: str, partition_key: str | None, name: str, payload: dict[str, Any]) -> None:
    folder = quality_dir(lake, source, partition_key)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(payload, default=str, indent=2, sort_keys=True))


def read_json(lake: Lake, source: str, partition_key: str | None, name: str) -> dict[str, Any] | None:
    path = quality_dir(lake, source, partition_key) / name
    return json.loads(path.read_text()) if path.exists() else None


def row_failures_key(frame: pd.DataFrame, declared: list[str], clean_file: str | None) -> str:
    """What stored row failures are filed under: the clean partition file's identity when the frame is
    exactly that file's content (free to obtain), else a hash of the frame's values (~0.15 s/M rows).
    The two kinds never equal each other, so a key of one kind never matches a frame of the other."""
    return f"file:{clean_file}" if clean_file else frame_fingerprint(frame, declared)
