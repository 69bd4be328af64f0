"""DuckDB over the lake: one connection that reads every zone's Parquet where it lies, local or S3.

DuckDB's own S3 support is an extension downloaded at run time, which production images and this
build machine cannot do; instead the lake's fsspec filesystem (s3fs, with the endpoint override and
the standard AWS credentials) is registered with DuckDB, so ``s3://`` paths go through the same client
the rest of the lake uses. Extension auto-loading is switched off so a query never tries the network.

Files are listed here, not by DuckDB globs: a listing of ``<zone>/<table>/date=*/`` is one request,
temporary files of a partition being published (``.data.parquet.<uuid>.tmp``) are never matched, and a
query over a date window names exactly the partitions it reads. No Dagster imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from lepton_pipelines.lake.store import PARTITION_FIELD, Lake

if TYPE_CHECKING:  # duckdb is imported by the step that queries (engine.connect), not at definitions load
    import duckdb

MARTS_ZONE = "marts"
# Zones a query can name as schemas (``governed.transactions``, ``marts.daily_kpis``); model outputs
# live beside the model registry at ``<lake>/models/<name>/scores/`` and appear as ``scores.<name>``.
QUERY_ZONES = ("raw", "clean", "governed", "quarantine", MARTS_ZONE)
_PARTITION = re.compile(rf"/{PARTITION_FIELD}=(\d{{4}}-\d{{2}}-\d{{2}})/[^/]+\.parquet$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class LakeQueryError(ValueError):
    """A table the query needs is not in the lake; the message names the path and what to materialize."""


def connect(lake: Lake, threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read ``lake`` (UTC session time zone, no network extensions)."""
    config: dict[str, object] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    import duckdb  # here, not at module level: definitions load does not pay for it

    con = duckdb.connect(config=config)
    # Timestamps in the lake are UTC instants; days and hours are cut in UTC whatever the host says.
    con.execute("SET TimeZone = 'UTC'")
    if not lake.is_local:
        con.register_filesystem(lake.fs)
    return con


def _url(lake: Lake, *parts: str) -> str:
    return "/".join([lake.url, *parts])


def _fs_path_to_url(lake: Lake, path: str) -> str:
    if lake.is_local:
        return path
    protocol = lake.url.split("://", 1)[0]
    return f"{protocol}://{path}" if "://" not in path else path


@dataclass(frozen=True)
class TableFiles:
    """The published Parquet files of one lake table, by partition (``None`` for an unpartitioned table)."""

    location: str  # the table's folder, for error messages
    by_partition: dict[str | None, list[str]]

    @property
    def partitions(self) -> list[str]:
        return sorted(p for p in self.by_partition if p is not None)

    def files(self, partitions: Iterable[str] | None = None) -> list[str]:
        if partitions is None:
            return [f for key in sorted(self.by_partition, key=lambda k: k or "") for f in self.by_partition[key]]
        return [f for p in partitions for f in self.by_partition.get(p, [])]


def table_files(lake: Lake, *parts: str) -> TableFiles:
    """Every published ``*.parquet`` under ``<lake>/<parts...>/`` (``date=`` folders or the folder itself)."""
    base = lake.path(*parts)
    location = _url(lake, *parts)
    by_partition: dict[str | None, list[str]] = {}
    fs = lake.fs
    root = base.path
    if not fs.exists(root):
        return TableFiles(location, by_partition)
    for pattern in (f"{root}/{PARTITION_FIELD}=*/*.parquet", f"{root}/*.parquet"):
        for path in sorted(fs.glob(pattern)):
            if path.rsplit("/", 1)[-1].startswith((".", "_")):
                continue
            match = _PARTITION.search(path)
            by_partition.setdefault(match.group(1) if match else None, []).append(_fs_path_to_url(lake, path))
    return TableFiles(location, by_partition)


def window(end: str, days: int) -> list[str]:
    """The ``days`` calendar days ending at ``end`` (inclusive), oldest first, as ``YYYY-MM-DD``."""
    last = date.fromisoformat(end)
    return [(last - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def sql_list(values: Iterable[str]) -> str:
    """A SQL list literal of strings (file paths), quotes escaped."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def parquet_scan(files: list[str], union_by_name: bool = True) -> str:
    """``read_parquet`` over exactly ``files``, with the ``date=`` folder as a DATE column ``date``.

    The folder's value wins over a ``date`` column stored in the file (DuckDB's hive rule), and
    ``union_by_name`` lets partitions written before and after a schema change be read together.
    """
    if not files:
        raise LakeQueryError("no files to scan")
    hive = (
        "hive_partitioning = true, hive_types = {'date': 'DATE'}"
        if any(f"/{PARTITION_FIELD}=" in f for f in files)
        else "hive_partitioning = false"
    )
    return f"read_parquet({sql_list(files)}, {hive}, union_by_name = {str(union_by_name).lower()})"


def empty_scan(columns: dict[str, str]) -> str:
    """A zero-row relation with ``columns`` (name → SQL type), standing in for a table with no partitions."""
    cols = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items())
    return f"(SELECT {cols} WHERE false)"


def register_lake_views(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    """``<zone>.<table>`` views over every table in the lake, and ``scores.<model>`` over batch scores.

    Returns the qualified names registered. A table whose files disagree on a column type is still
    registered (``union_by_name`` widens); a folder with no published file is skipped.
    """
    names: list[str] = []
    fs = lake.fs
    for zone in QUERY_ZONES:
        zone_root = lake.path(zone).path
        if not fs.exists(zone_root):
            continue
        for table_dir in sorted(fs.ls(zone_root, detail=False)):
            table = table_dir.rstrip("/").rsplit("/", 1)[-1]
            if not _IDENTIFIER.match(table):
                continue
            files = table_files(lake, zone, table).files()
            if files:
                names.append(_create_view(con, zone, table, files))
    models_root = lake.path("models").path
    if fs.exists(models_root):
        for model_dir in sorted(fs.ls(models_root, detail=False)):
            model = model_dir.rstrip("/").rsplit("/", 1)[-1]
            if _IDENTIFIER.match(model):
                files = table_files(lake, "models", model, "scores").files()
                if files:
                    names.append(_create_view(con, "scores", model, files))
    return names


def _create_view(con: duckdb.DuckDBPyConnection, schema: str, table: str, files: list[str]) -> str:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS SELECT * FROM {parquet_scan(files)}')
    return f"{schema}.{table}"
