"""The lake: where every zone's Parquet lives, and how a partition is published atomically.

Pure storage logic with no Dagster imports, so the IO manager, quarantine writers, the model
registry, backups and tests all share one definition of paths and commits.

Layout (fixed contract): ``<lake>/<zone>/<source>/date=YYYY-MM-DD/*.parquet``; unpartitioned tables
drop the ``date=`` level. A partition is one file, ``data.parquet``, written to a hidden temporary key
in the same folder and then moved into place, so a reader (DuckDB, Spark, Athena, pandas) either sees
the previous version or the new one — never half a file — and rewriting a partition replaces it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.utils import get_protocol
from upath import UPath

from lepton_pipelines.lake.atomic import is_local, write_atomic

ZONES = ("landing", "raw", "clean", "governed", "quarantine")
DATA_FILE = "data.parquet"
PARTITION_FIELD = "date"


def default_lake_url() -> str:
    """``$LEPTON_LAKE_URL``, else ``$DAGSTER_HOME/lake``, else ``./.lake`` (the embedded default)."""
    if os.environ.get("LEPTON_LAKE_URL"):
        return os.environ["LEPTON_LAKE_URL"]
    if os.environ.get("DAGSTER_HOME"):
        return str(Path(os.environ["DAGSTER_HOME"]) / "lake")
    return str(Path(".lake").resolve())


def s3_storage_options(endpoint_url: str | None = None) -> dict[str, Any]:
    """fsspec options for s3fs: an endpoint override for MinIO/moto; credentials stay with the standard
    AWS environment variables and are never copied into config or metadata."""
    endpoint = endpoint_url or os.environ.get("LEPTON_S3_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def open_location(url: str, s3_endpoint_url: str | None = None) -> UPath:
    """A lake or backup location as a UPath: a local folder (``~`` expanded, made absolute, a
    ``file://`` prefix dropped), or a URL — ``s3://`` with the endpoint override of
    ``s3_storage_options``."""
    url = url.rstrip("/")
    if is_local(url):
        return UPath(str(Path(url.removeprefix("file://")).expanduser().resolve()))
    if get_protocol(url) == "s3":
        return UPath(url, **s3_storage_options(s3_endpoint_url))
    return UPath(url)


COMPRESSION_ENV = "LEPTON_PARQUET_COMPRESSION"
COMPRESSIONS = ("snappy", "zstd", "lz4", "gzip", "brotli", "none")
DEFAULT_COMPRESSION = "zstd"


def parquet_compression() -> str:
    """The codec every lake table is written with: ``$LEPTON_PARQUET_COMPRESSION``, default ``zstd``.

    zstd files are about half the size of snappy ones (9 against 21 MiB for a million transactions) at a
    write time the pipeline benchmark cannot tell apart; ``snappy`` (Spark's and pyarrow's default) is
    there for readers that lack zstd.
    """
    codec = os.environ.get(COMPRESSION_ENV, DEFAULT_COMPRESSION).strip().lower() or DEFAULT_COMPRESSION
    if codec not in COMPRESSIONS:
        raise ValueError(f"{COMPRESSION_ENV}={codec!r} is not a Parquet codec; allowed: {', '.join(COMPRESSIONS)}")
    return codec


def partition_dirname(partition_key: str) -> str:
    return f"{PARTITION_FIELD}={partition_key}"


# Key of ``DataFrame.attrs`` holding the identity of the one published file a frame was written to or
# read from (see ``file_identity``); absent when the frame has no single file behind it.
FILE_IDENTITY_ATTR = "lepton/file_identity"


@dataclass(frozen=True)
class WriteResult:
    path: str
    rows: int
    bytes: int
    identity: str = ""  # file_identity of the published file


def file_identity(path: UPath) -> str:
    """``path|size|version`` of one published file: the version is the ETag on object stores, else the
    modification time in ns and inode. A rewrite of the partition (a new temp file moved into place)
    changes it, so it ties results computed on a frame to the exact file that frame was written to."""
    info = path.fs.info(path.path)
    version = info.get("ETag") or info.get("etag") or info.get("LastModified") or ""
    if not version and is_local(path):
        stat = os.stat(path.path)
        version = f"{stat.st_mtime_ns}:{stat.st_ino}"
    return f"{path}|{info.get('size')}|{version}"


class Lake:
    """A lake rooted at a local folder or an ``s3://bucket/prefix`` URL."""

    def __init__(self, url: str | None = None, s3_endpoint_url: str | None = None):
        self.url = (url or default_lake_url()).rstrip("/")
        self.root = open_location(self.url, s3_endpoint_url)

    @property
    def is_local(self) -> bool:
        return is_local(self.root)

    @property
    def fs(self):
        return self.root.fs

    def path(self, *parts: str) -> UPath:
        return self.root.joinpath(*parts)

    def table_dir(self, zone: str, source: str, partition_key: str | None = None) -> UPath:
        if zone not in ZONES:
            raise ValueError(f"unknown lake zone {zone!r}; allowed: {', '.join(ZONES)}")
        base = self.path(zone, source)
        return base / partition_dirname(partition_key) if partition_key else base

    def glob_pattern(self, zone: str, source: str, partitioned: bool = True) -> str:
        """The pattern DuckDB/Spark read with hive partitioning, e.g. ``<lake>/clean/x/*/*.parquet``."""
        return f"{self.url}/{zone}/{source}/*/*.parquet" if partitioned else f"{self.url}/{zone}/{source}/*.parquet"

    # -- writing -----------------------------------------------------------------------------
    def write_table(
        self, zone: str, source: str, partition_key: str | None, df: pd.DataFrame, name: str = DATA_FILE
    ) -> WriteResult:
        return write_parquet_atomic(self.table_dir(zone, source, partition_key), df, name)

    # -- reading -----------------------------------------------------------------------------
    def read_table(self, zone: str, source: str, partition_key: str | None = None) -> pd.DataFrame:
        return read_parquet_dir(self.table_dir(zone, source, partition_key))

    def read_partitions(
        self, zone: str, source: str, partition_keys: list[str] | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """Several partitions (default: all) as one frame, ``columns`` only where a file has them.

        Partitions with no published file are skipped: a day without data is not an error here, and
        an empty frame with ``columns`` comes back when no partition has any.
        """
        frames = []
        for key in partition_keys if partition_keys is not None else self.partitions(zone, source):
            folder = self.table_dir(zone, source, key)
            if published_files(folder):
                frame = read_parquet_dir(folder, columns)
                frame.attrs.pop(FILE_IDENTITY_ATTR, None)  # the result stands for many files, not one
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns or [])

    def partitions(self, zone: str, source: str) -> list[str]:
        base = self.table_dir(zone, source)
        if not base.exists():
            return []
        prefix = f"{PARTITION_FIELD}="
        return sorted(p.name[len(prefix) :] for p in base.iterdir() if p.name.startswith(prefix))


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def write_parquet_atomic(directory: UPath, df: pd.DataFrame | pa.Table, name: str = DATA_FILE) -> WriteResult:
    """Write ``directory/name`` so that readers never observe a partial file (``atomic.write_atomic``:
    a hidden staging file, then one rename on local disks or one server-side copy on S3). A crash
    before the publish leaves the previous version untouched."""
    table = df if isinstance(df, pa.Table) else to_arrow(df)
    final = directory / name
    compression, dictionary = parquet_compression(), dictionary_columns(table)
    statistics = [column for column in table.column_names if column not in UNSUMMARIZED_COLUMNS]

    def write(handle) -> None:
        pq.write_table(
            table,
            handle,
            compression=compression,
            row_group_size=256_000,
            write_batch_size=WRITE_BATCH_ROWS,
            use_dictionary=dictionary,
            write_statistics=statistics,
        )

    write_atomic(final, write)
    identity = file_identity(final)
    return WriteResult(path=str(final), rows=table.num_rows, bytes=int(identity.split("|")[-2] or 0), identity=identity)


# Values the Parquet column writer encodes per batch (pyarrow's default: 1,024). Each batch pays a fixed
# cost (level encoding, statistics update, page-size check); 32,768 makes a million-row partition's write
# ~12% cheaper with a byte-identical file size. Pages still close at ``data_page_size`` (1 MiB), checked
# after each batch, so a page holds at most one batch more than that: well within what readers accept.
WRITE_BATCH_ROWS = 32_768

# Per-row JSON and landed text (the pipeline's lineage columns, the quarantine's raw line): no reader
# prunes row groups on their min/max, and computing those statistics is ~5% of a partition's write.
UNSUMMARIZED_COLUMNS = frozenset({"_parse_errors", "_replaced", "_raw"})

# Rows sampled to decide whether a text column repeats enough to be worth dictionary encoding.
DICTIONARY_SAMPLE_ROWS = 10_000


def dictionary_columns(table: pa.Table) -> list[str]:
    """Columns worth Parquet dictionary encoding: categoricals, and text whose sample repeats values.

    Parquet writers try a dictionary for every column by default and give up on ids only after building
    a large one: for a million-row partition that wasted attempt is a third of the write time, and the
    file gets no smaller. Codes, statuses, countries and file paths repeat and shrink several-fold.
    """
    sample = table.slice(0, DICTIONARY_SAMPLE_ROWS)
    chosen = []
    for field, column in zip(table.schema, sample.columns, strict=True):
        if pa.types.is_dictionary(field.type):
            chosen.append(field.name)
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            if len(column) and pc.count_distinct(column, mode="all").as_py() <= len(column) // 2:
                chosen.append(field.name)
    return chosen


def _arrow_backed(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """Decimals and dates stay Arrow-backed when read: as Python objects a decimal(38, 4) column would be
    written back with a precision inferred from its values, and a date would lose its Parquet DATE type."""
    if pa.types.is_decimal(arrow_type) or pa.types.is_date(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def published_files(directory: UPath) -> list[UPath]:
    """The published ``*.parquet`` files of a partition or table folder (or of its partition folders
    when it has none of its own); never staging files or ``_``-prefixed side files."""
    if directory.is_file():
        return [directory]
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        files = sorted(p for p in directory.glob("*/*.parquet") if not p.name.startswith((".", "_")))
    return files


def read_parquet_dir(directory: UPath, columns: list[str] | None = None) -> pd.DataFrame:
    """Read every published ``*.parquet`` file of a partition or table folder (never temp files);
    ``columns``: only those, in each file that has them."""
    files = published_files(directory)
    if not files:
        raise FileNotFoundError(f"no published Parquet files under {directory}")
    identity = file_identity(files[0]) if len(files) == 1 else None
    tables = []
    for f in files:
        with f.fs.open(f.path, "rb") as handle:
            if columns is None:
                tables.append(pq.read_table(handle))
            else:
                parquet = pq.ParquetFile(handle)
                tables.append(parquet.read(columns=[c for c in columns if c in parquet.schema_arrow.names]))
    if identity is not None and file_identity(files[0]) != identity:
        identity = None  # rewritten while we read: the frame may be either version, so it has no identity
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    frame = table.to_pandas(types_mapper=_arrow_backed)
    del table, tables
    frame.attrs.pop(FILE_IDENTITY_ATTR, None)  # pandas restores attrs stored with the frame it was written from
    if identity is not None:
        frame.attrs[FILE_IDENTITY_ATTR] = identity
    # The reader's threads leave their decode buffers in mimalloc's per-thread pages, which the caller's
    # thread cannot reuse: returned now, they do not stack under the caller's own peak.
    pa.default_memory_pool().release_unused()
    return frame
