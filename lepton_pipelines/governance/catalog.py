"""The data catalog: every dataset in the lake with its owner, schema, size, freshness, quality and lineage.

Built from what is actually in the lake (Parquet footers, file sizes and times), joined with the source
registry for ownership, descriptions and column docs, and with the quality history for a score. Only
footers are read, so cataloguing a large lake stays cheap.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from lepton_pipelines.contract import SourceContract
from lepton_pipelines.governance import quality_store as store
from lepton_pipelines.lake.store import Lake

CATALOG_ZONES = ("raw", "clean", "governed", "quarantine")
UPSTREAM = {"raw": "connector", "clean": "raw", "governed": "clean", "quarantine": "raw, clean"}
CATALOG_COLUMNS = (
    "dataset",
    "zone",
    "source",
    "owner",
    "description",
    "schema",
    "row_count",
    "size_bytes",
    "partitions",
    "last_partition",
    "last_update",
    "quality_score",
    "upstream",
    "column_lineage",
    "location",
)


def build_catalog(lake: Lake, sources: list[SourceContract]) -> pd.DataFrame:
    by_name = {s.name: s for s in sources}
    scores = _quality_scores(lake)
    rows = []
    for zone in CATALOG_ZONES:
        zone_dir = lake.path(zone)
        if not zone_dir.exists():
            continue
        for source_dir in sorted(p for p in zone_dir.iterdir() if p.is_dir()):
            rows.append(_dataset_row(lake, zone, source_dir.name, by_name.get(source_dir.name), scores))
    return pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))


def _dataset_row(
    lake: Lake, zone: str, source_name: str, source: SourceContract | None, scores: dict[str, float]
) -> dict[str, Any]:
    files = [f for f in lake.path(zone, source_name).rglob("*.parquet") if not f.name.startswith((".", "_"))]
    rows, size, updated, schema = 0, 0, None, None
    for f in files:
        info = f.fs.info(f.path)
        size += int(info.get("size") or 0)
        modified = _modified(info)
        updated = modified if updated is None or (modified and modified > updated) else updated
        with f.fs.open(f.path, "rb") as handle:
            meta = pq.ParquetFile(handle)
            rows += meta.metadata.num_rows
            schema = schema or meta.schema_arrow
    docs = {c.name: c.description for c in source.spec.columns} if source else {}
    columns = [
        {"name": field.name, "type": str(field.type), "description": docs.get(field.name, "")}
        for field in (schema or [])
    ]
    partitions = sorted({f.parent.name.split("=", 1)[1] for f in files if f.parent.name.startswith("date=")})
    connector = f"{source.spec.connector['type']} connector ({source.spec.origin})" if source else "unknown"
    return {
        "dataset": f"{source_name}/{zone}",
        "zone": zone,
        "source": source_name,
        "owner": source.spec.owner if source else "",
        "description": source.spec.description if source else "(not in the source registry)",
        "schema": json.dumps(columns),
        "row_count": rows,
        "size_bytes": size,
        "partitions": len(partitions),
        "last_partition": partitions[-1] if partitions else "",
        "last_update": updated,
        "quality_score": scores.get(source_name) if zone in ("clean", "governed") else None,
        "upstream": connector if zone == "raw" else ", ".join(f"{source_name}/{u}" for u in UPSTREAM[zone].split(", ")),
        "column_lineage": json.dumps(_column_lineage(lake, source_name, partitions[-1] if partitions else None))
        if zone in ("clean", "governed")
        else "{}",
        "location": str(lake.path(zone, source_name)),
    }


def _modified(info: dict[str, Any]) -> datetime | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    return (
        pd.Timestamp(value).tz_convert("UTC").to_pydatetime()
        if pd.Timestamp(value).tzinfo
        else pd.Timestamp(value, tz="UTC").to_pydatetime()
    )


def _quality_scores(lake: Lake) -> dict[str, float]:
    """Share of checks passing in each source's latest validated partition."""
    history = store.read_history(lake)
    if history.empty:
        return {}
    latest = history.sort_values("validated_at").drop_duplicates(
        ["source", "partition", "stage", "check_name"], keep="last"
    )
    newest = latest.groupby("source")["partition"].transform("max")
    recent = latest[latest["partition"] == newest]
    return recent.groupby("source")["passed"].mean().round(4).to_dict()


def _column_lineage(lake: Lake, source: str, partition_key: str | None) -> dict[str, Any]:
    """What the cleaning rules did to each column, as reported by the clean step (``cleaning.json``)."""
    recorded = store.read_json(lake, source, partition_key, store.CLEANING_FILE) or {}
    return recorded.get("lineage") or {}


def catalog_markdown(catalog: pd.DataFrame) -> str:
    lines = [
        "| dataset | owner | rows | size | partitions | last update | quality | upstream |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for row in catalog.itertuples():
        score = "" if pd.isna(row.quality_score) else f"{row.quality_score:.0%}"
        lines.append(
            f"| {row.dataset} | {row.owner} | {row.row_count} | {row.size_bytes / 1024:.1f} KiB | {row.partitions} | "
            f"{row.last_update} | {score} | {row.upstream} |"
        )
    details = []
    for row in catalog[catalog["zone"] == "governed"].itertuples():
        details.append(f"\n**{row.dataset}** — {row.description}\n\n| column | type | description |\n|---|---|---|")
        details.extend(f"| {c['name']} | {c['type']} | {c['description']} |" for c in json.loads(row.schema))
    return "\n".join(lines + details) + "\n"


def catalog_path(lake: Lake):
    return lake.path("_catalog")
