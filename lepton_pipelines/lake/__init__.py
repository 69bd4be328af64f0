"""Lake paths, Parquet IO and atomic commits (see store.py for the layout contract)."""

from lepton_pipelines.lake.store import (
    ZONES,
    Lake,
    WriteResult,
    default_lake_url,
    read_parquet_dir,
    write_parquet_atomic,
)

__all__ = ["ZONES", "Lake", "WriteResult", "default_lake_url", "read_parquet_dir", "write_parquet_atomic"]
