"""File drops: CSV, JSON Lines and Parquet files landed under ``<lake>/landing/<source>/``.

Works the same on a local disk and on S3, because every byte goes through the lake's fsspec filesystem.
Each format has its module: ``csv`` (a C-speed path and a line-by-line recovery path), ``jsonl`` and
``parquet``; ``landing`` lists the files, ``settings`` holds the ``connector:`` block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lepton_pipelines.connectors.base import (
    LINEAGE_COLUMNS,
    SOURCE_FILE,
    SOURCE_LINE,
    Connector,
    ConnectorError,
    FetchRequest,
    FetchResult,
    RecordShape,
    merge_landed_schemas,
    register_connector,
    rejects_frame,
)
from lepton_pipelines.connectors.files.csv import read_csv_bytes
from lepton_pipelines.connectors.files.jsonl import read_jsonl_bytes
from lepton_pipelines.connectors.files.landing import LandingFile, landing_run_key, list_landing_files
from lepton_pipelines.connectors.files.parquet import read_parquet_bytes
from lepton_pipelines.connectors.files.settings import FileRead, FileSettings

__all__ = [
    "FileConnector",
    "FileSettings",
    "LandingFile",
    "landing_run_key",
    "list_landing_files",
    "source_file_column",
]


@register_connector
class FileConnector(Connector):
    type = "file"
    Settings = FileSettings
    settings: FileSettings

    def landing_settings(self) -> FileSettings:
        return self.settings

    def fetch(self, request: FetchRequest) -> FetchResult:
        files = list_landing_files(
            request.lake,
            request.source,
            self.settings,
            partitioned=request.partition_key is not None,
            partition_key=request.partition_key,
        )
        if not files:
            where = request.lake.path("landing", request.source)
            raise ConnectorError(
                f"source {request.source!r}: no files match {self.settings.glob_for(request.partition_key)!r} "
                f"under {where}; drop the partition's files there (hidden '.'/'_' files are ignored)"
            )
        frames: list[pd.DataFrame] = []
        rejects: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        schemas: list[dict[str, str]] = []
        shape = RecordShape.declared(request.column_types, self.settings.flatten_separator)
        for file in files:
            read = self._read(request.lake, file, shape)
            frame = read.records
            clashing = [c for c in LINEAGE_COLUMNS if c in frame.columns]
            if clashing:
                raise ConnectorError(
                    f"{file.path}: column(s) {', '.join(clashing)} are reserved for lineage; rename them in the source"
                )
            frame[SOURCE_LINE] = read.lines
            frames.append(frame)
            rejects.extend(read.rejects)
            schemas.append(read.landed_schema)
            entry = {
                "path": file.path,
                "bytes": file.size,
                "rows": len(frame),
                "rejected": len(read.rejects),
                "mtime_or_etag": file.mtime_or_etag,
                "partition_key": file.partition_key,
                "columns": [c for c in frame.columns if c not in LINEAGE_COLUMNS],
            }
            if read.note:
                entry["note"] = read.note
            inputs.append(entry)
        records = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
        records[SOURCE_FILE] = source_file_column([file.path for file in files], [len(f) for f in frames])
        records = records[[c for c in records.columns if c not in LINEAGE_COLUMNS] + list(LINEAGE_COLUMNS)]
        return FetchResult(
            records=records,
            rejects=rejects_frame(rejects),
            inputs=inputs,
            landed_schema=merge_landed_schemas(schemas),
            keyed_records=self.settings.format == "jsonl",
        )

    def _read(self, lake: Any, file: LandingFile, shape: RecordShape) -> FileRead:
        data = lake.fs.cat_file(lake.path(*file.path.split("/")).path)
        if not data:
            return FileRead(
                pd.DataFrame(), np.empty(0, dtype=np.int64), [], {}, note="empty file (0 bytes): no records"
            )
        try:
            if self.settings.format == "jsonl":
                return read_jsonl_bytes(data, file.path, self.settings, shape)
            readers = {"csv": read_csv_bytes, "parquet": read_parquet_bytes}
            return readers[self.settings.format](data, file.path, self.settings)
        except ConnectorError:
            raise
        except Exception as exc:  # an unforeseen parser failure must still name the file
            raise ConnectorError(
                f"{file.path}: could not read as {self.settings.format}: {type(exc).__name__}: {exc}"
            ) from exc


def source_file_column(paths: list[str], rows_per_file: list[int]) -> pd.Categorical:
    """``_source_file`` as a categorical: a partition's million rows name a handful of files, and the
    repeated path as text costs ~55 MiB per frame in memory (and time in every copy and Parquet write).
    Categories are the paths in lexicographic order, so sorting by code sorts by path; the raw zone
    stores the column dictionary-encoded and reads it back as the same categorical."""
    categories = pd.Index(sorted(set(paths)), dtype="str")
    codes = np.repeat(categories.get_indexer(paths), rows_per_file)
    return pd.Categorical.from_codes(codes, categories=categories)
