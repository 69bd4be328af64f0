"""The quarantine zone: rows that could not be certified, with the reason, never silently dropped.

Each pipeline stage owns one file per partition — ``raw.parquet`` (unparsable input lines),
``clean.parquet`` (rows removed by cleaning rules) and ``governed.parquet`` (rows failing row-level
expectations) — so stages never overwrite each other and re-running a stage replaces only its own rows.
"""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from lepton_pipelines.lake.store import Lake, WriteResult, write_parquet_atomic

STAGE_COLUMN = "_quarantine_stage"


def write_quarantine(lake: Lake, source: str, partition_key: str | None, stage: str, rows: pd.DataFrame) -> WriteResult | None:
    """Publish ``rows`` as this stage's quarantine file; an empty frame removes a stale file instead,
    so a clean re-run of a partition leaves no quarantine rows behind from an earlier bad input."""
    folder = lake.table_dir("quarantine", source, partition_key)
    target = folder / f"{stage}.parquet"
    if rows is None or rows.empty:
        if target.exists():
            target.unlink()
        return None
    rows = rows.copy(deep=False)  # copy-on-write: the caller's frame keeps its columns
    rows[STAGE_COLUMN] = stage
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
