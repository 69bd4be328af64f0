"""The lake IO manager: pandas DataFrames as Parquet, Hive-partitioned, committed atomically.

Built on Dagster's ``UPathIOManager`` so one class serves the local filesystem and S3 (s3fs through
universal_pathlib). Only the path scheme and the commit differ from the base class:

* asset key ``[<source>, <zone>]`` → ``<lake>/<zone>/<source>/`` (the fixed lake contract; other keys
  such as ``[governance, data_catalog]`` land under ``<lake>/_assets/<key path>/``);
* daily partitions → ``date=YYYY-MM-DD`` folders;
* each table/partition is one ``data.parquet`` published by ``write_parquet_atomic``.

A step that materializes a *range* of partitions (a backfill under a ``BackfillPolicy``) publishes each
partition itself as soon as it is computed, with ``publish_table`` — the same write this IO manager
does — and hands the IO manager a ``PublishedPartitions`` receipt instead of one frame for the whole
range: a year of partitions never sits in memory at once, and each partition is still its own atomic
``date=`` folder. The IO manager checks the receipt covers exactly the range Dagster asked for.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    UPathIOManager,
)
from upath import UPath

from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import (
    DATA_FILE,
    FILE_IDENTITY_ATTR,
    ZONES,
    Lake,
    partition_dirname,
    read_parquet_dir,
    write_parquet_atomic,
)

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class PublishedPartitions:
    """What a partition-range step outputs: the partitions it already published, one folder each."""

    partitions: tuple[str, ...]
    paths: tuple[str, ...] = ()


def publish_table(directory: UPath, frame: pd.DataFrame) -> dict[str, Any]:
    """Publish ``frame`` atomically as ``directory/data.parquet``; return the materialization metadata
    (path, row count, byte size, schema, preview). Tags the frame with the published file's identity
    (``FILE_IDENTITY_ATTR``), as the IO manager does, so the step can tie what it computes to the file."""
    result = write_parquet_atomic(directory, frame)
    frame.attrs[FILE_IDENTITY_ATTR] = result.identity
    return {"path": MetadataValue.path(str(directory)), **table_metadata(frame, byte_size=result.bytes)}


class LakeParquetIOManager(UPathIOManager):
    extension = None  # a partition is a folder holding data.parquet

    def __init__(self, lake: Lake):
        super().__init__(base_path=lake.root)
        self.lake = lake
        self._written: dict[str, int] = {}  # partition folder → bytes of the file just published

    def get_asset_relative_path(self, context: InputContext | OutputContext) -> UPath:
        path = context.asset_key.path
        if len(path) == 2 and path[1] in ZONES:
            return UPath(path[1], path[0])
        return UPath("_assets", *path)

    def get_path_for_partition(self, context: InputContext | OutputContext, path: UPath, partition: str) -> UPath:
        return path / partition_dirname(partition)

    def make_directory(self, path: UPath) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if isinstance(obj, PublishedPartitions):
            expected = set(context.asset_partition_keys) if context.has_asset_partitions else set()
            if set(obj.partitions) != expected:
                missing, extra = sorted(expected - set(obj.partitions)), sorted(set(obj.partitions) - expected)
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: the step published partitions that differ from the run's "
                    f"range (not published: {missing[:10]}, not requested: {extra[:10]})"
                )
            context.add_output_metadata({"partitions_published": len(obj.partitions)})
            return
        super().handle_output(context, obj)

    def output_path(self, context: InputContext | OutputContext) -> UPath:
        """The folder an output is published to: the same path ``UPathIOManager.handle_output`` writes,
        built from its public hooks (``get_asset_relative_path``, ``get_path_for_partition``)."""
        path = self.lake.root / self.get_asset_relative_path(context)
        return (
            self.get_path_for_partition(context, path, context.asset_partition_key)
            if context.has_asset_partitions
            else path
        )

    def has_output(self, context: OutputContext) -> bool:
        return (self.output_path(context) / DATA_FILE).exists()

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the lake IO manager stores pandas DataFrames, got "
                f"{type(obj).__name__}"
            )
        result = write_parquet_atomic(path, obj)
        self._written[str(path)] = result.bytes
        # The asset that yielded ``obj`` still holds it: it can tie what it computes on the frame (e.g. row
        # failures) to the published file, which a later step that reads the file can check cheaply.
        obj.attrs[FILE_IDENTITY_ATTR] = result.identity

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        # The base class adds "path" (the partition folder) itself, after dump_to_path.
        if not isinstance(obj, pd.DataFrame):
            return {}
        return table_metadata(obj, byte_size=self._written.pop(str(self.output_path(context)), None))

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        release_freed_memory()
        frame = read_parquet_dir(path)
        frame.attrs.pop(FILE_IDENTITY_ATTR, None)  # pandas would carry it onto every frame derived from this one
        return frame


def release_freed_memory() -> None:
    """Hand memory the previous step freed back to the OS before this step loads its partition.

    Arrow's allocator (mimalloc) keeps freed pages mapped for reuse, much of them in the heaps of the
    threads that read or wrote Parquet, where this thread cannot reuse them: the next step's peak would
    stack on a few hundred MiB of pages holding no data. Releasing costs milliseconds. pandas and numpy
    allocate through the C library's malloc, which keeps freed chunks in its arenas the same way (glibc
    raises its mmap threshold after the first large free, so later columns land in the heap):
    ``malloc_trim`` hands those back too where the C library is glibc.
    """
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def table_metadata(df: pd.DataFrame, byte_size: int | None = None, path: str | None = None) -> dict[str, Any]:
    """Row count, byte size, path, TableSchema and a small preview — on every materialization."""
    meta: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(len(df)),
        "dagster/column_schema": MetadataValue.table_schema(table_schema(df)),
        "preview": MetadataValue.md(_preview_markdown(df)),
    }
    if byte_size is not None:
        meta["byte_size"] = MetadataValue.int(byte_size)
    if path is not None:
        meta["path"] = MetadataValue.path(path)
    return meta


def table_schema(df: pd.DataFrame, descriptions: dict[str, str] | None = None) -> TableSchema:
    descriptions = descriptions or {}
    return TableSchema(
        columns=[
            TableColumn(name=str(c), type=str(t), description=descriptions.get(str(c))) for c, t in df.dtypes.items()
        ]
    )


def _preview_markdown(df: pd.DataFrame) -> str:
    head = df.head(PREVIEW_ROWS)
    if head.empty:
        return "_(no rows)_"
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:40]


class LakeIOManager(ConfigurableIOManagerFactory):
    """The lake IO manager over the ``LakeResource`` it is given (a nested resource: the lake is
    configured once, in ``lepton_pipelines.resources``)."""

    lake: LakeResource

    def create_io_manager(self, context) -> LakeParquetIOManager:
        return LakeParquetIOManager(self.lake.get())
