"""Quality history in the lake: ``<lake>/_quality/<source>[/date=<pk>]/``.

``results.parquet``  one row per check and stage (raw, clean, governed) of the latest validation of
                     the partition; the scorecard reads these across partitions.
``gx_result.json``   GX's own validation result (per-row lists trimmed to the sample).
``row_failures.parquet``  positions of rows failing row-level expectations, with the fingerprint of the
                     frame they refer to, so certification quarantines exactly what was validated.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from upath import UPath

from lepton_pipelines.lake.store import Lake, partition_dirname, read_parquet_dir, write_parquet_atomic

QUALITY_ROOT = "_quality"
RESULTS_FILE = "results.parquet"
GX_RESULT_FILE = "gx_result.json"
ROW_FAILURES_FILE = "row_failures.parquet"
RESULT_COLUMNS = (
    "source", "partition", "stage", "check_name", "expectation", "severity", "blocking", "passed",
    "observed", "unexpected_count", "unexpected_percent", "quarantined", "description", "validated_at",
)


def quality_dir(lake: Lake, source: str, partition_key: str | None) -> UPath:
    base = lake.path(QUALITY_ROOT, source)
    return base / partition_dirname(partition_key) if partition_key else base


def result_row(source: str, partition_key: str | None, stage: str, **values: Any) -> dict[str, Any]:
    row = {c: None for c in RESULT_COLUMNS}
    row.update(source=source, partition=partition_key or "", stage=stage, validated_at=datetime.now(timezone.utc), **values)
    row["observed"] = None if row["observed"] is None else json.dumps(row["observed"], default=str)
    return row


def write_results(lake: Lake, source: str, partition_key: str | None, stage: str, rows: list[dict[str, Any]]) -> None:
    """Replace this stage's rows of the partition, keeping the other stages' rows."""
    folder = quality_dir(lake, source, partition_key)
    new = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    existing = read_results(lake, source, partition_key)
    if existing is not None:
        existing = existing[existing["stage"] != stage]
        new = pd.concat([existing, new], ignore_index=True) if not existing.empty else new
    new = new.astype({"unexpected_count": "Int64", "unexpected_percent": "Float64", "quarantined": "Int64",
                      "passed": "bool", "blocking": "bool"})
    new["validated_at"] = pd.to_datetime(new["validated_at"], utc=True)
    write_parquet_atomic(folder, new, RESULTS_FILE)


def read_results(lake: Lake, source: str, partition_key: str | None) -> pd.DataFrame | None:
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


def write_row_failures(lake: Lake, source: str, partition_key: str | None, fingerprint: str, failures: dict[str, Any]) -> None:
    """``failures``: check name → array of row positions."""
    records = [(name, int(pos)) for name, positions in failures.items() for pos in positions]
    frame = pd.DataFrame(records, columns=["check_name", "row"]).astype({"row": "int64"})
    frame["fingerprint"] = fingerprint
    if frame.empty:  # keep the fingerprint even when no row failed
        frame = pd.DataFrame({"check_name": [None], "row": pd.array([None], dtype="Int64"), "fingerprint": [fingerprint]})
    write_parquet_atomic(quality_dir(lake, source, partition_key), frame, ROW_FAILURES_FILE)


def read_row_failures(lake: Lake, source: str, partition_key: str | None, fingerprint: str) -> dict[str, list[int]] | None:
    """The stored failures if they were computed on the frame with this fingerprint, else None."""
    path = quality_dir(lake, source, partition_key) / ROW_FAILURES_FILE
    if not path.exists():
        return None
    frame = read_parquet_dir(path)
    if frame.empty or frame["fingerprint"].iloc[0] != fingerprint:
        return None
    frame = frame.dropna(subset=["check_name"])
    return {name: group["row"].astype("int64").tolist() for name, group in frame.groupby("check_name")}


def read_json(lake: Lake, source: str, partition_key: str | None, name: str) -> dict[str, Any] | None:
    path = quality_dir(lake, source, partition_key) / name
    return json.loads(path.read_text()) if path.exists() else None
