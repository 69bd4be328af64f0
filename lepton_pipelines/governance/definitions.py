"""Dagster definitions owned by governance: the GX resource, freshness checks and their schedule,
column-schema-change checks on raw, the quality scorecard and the data catalog."""

from __future__ import annotations

import dagster as dg

from lepton_pipelines.contract import SourceContract
from lepton_pipelines.governance.catalog import build_catalog, catalog_markdown, catalog_path
from lepton_pipelines.governance.freshness import freshness_checks, freshness_schedule
from lepton_pipelines.governance.quality_store import QUALITY_ROOT, read_history
from lepton_pipelines.governance.scorecard import governed_row_counts, pass_rates, scorecard_metadata
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import write_parquet_atomic

GOVERNANCE_GROUP = "governance"
SCORECARD_KEY = dg.AssetKey(["governance", "quality_scorecard"])
CATALOG_KEY = dg.AssetKey(["governance", "data_catalog"])
GOVERNANCE_REFRESH_CRON = "30 * * * *"


def build_governance_defs(sources: list[SourceContract]) -> dg.Definitions:
    """Needs the ``lake`` resource (``LakeResource``) from the lake folder's definitions."""
    governed = [dg.AssetKey([s.name, "governed"]) for s in sources]

    @dg.asset(
        key=SCORECARD_KEY,
        group_name=GOVERNANCE_GROUP,
        deps=governed,
        kinds={"parquet", "pandas"},
        description="Pass rates of every quality check, per source and per partition, from `_quality` history.",
    )
    def quality_scorecard(lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        per_source, per_day = pass_rates(read_history(store))
        folder = store.path(QUALITY_ROOT, "_scorecard")
        write_parquet_atomic(folder, per_source, "by_source.parquet")
        written = write_parquet_atomic(folder, per_day, "by_partition.parquet")
        overall = float(per_source["passed"].sum() / per_source["checks"].sum()) if len(per_source) else None
        metadata = {
            **scorecard_metadata(per_source, per_day, governed_row_counts(store, per_day)),
            "sources": len(per_source),
            "path": dg.MetadataValue.path(str(folder)),
            "dagster/row_count": written.rows,
        }
        if overall is not None:
            metadata["overall_pass_rate"] = dg.MetadataValue.float(overall)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=CATALOG_KEY,
        group_name=GOVERNANCE_GROUP,
        deps=[SCORECARD_KEY],
        kinds={"parquet"},
        description="Every dataset in the lake: zone, owner, schema and column docs, size, last "
        "update, quality, lineage.",
    )
    def data_catalog(lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        catalog = build_catalog(store, sources)
        written = write_parquet_atomic(catalog_path(store), catalog, "catalog.parquet")
        return dg.MaterializeResult(
            metadata={
                "catalog": dg.MetadataValue.md(catalog_markdown(catalog)),
                "datasets": len(catalog),
                "path": dg.MetadataValue.path(written.path),
                "dagster/row_count": len(catalog),
            }
        )

    checks = freshness_checks(sources)
    schema_change = (
        dg.build_column_schema_change_checks(assets=[dg.AssetKey([s.name, "raw"]) for s in sources]) if sources else []
    )
    freshness_job, freshness_runs = freshness_schedule(checks)
    refresh = dg.ScheduleDefinition(
        name="governance_refresh",
        cron_schedule=GOVERNANCE_REFRESH_CRON,
        target=dg.AssetSelection.assets(SCORECARD_KEY, CATALOG_KEY),
    )
    return dg.Definitions(
        assets=[quality_scorecard, data_catalog],
        asset_checks=[*checks, *schema_change],
        jobs=[freshness_job] if freshness_job else [],
        schedules=[refresh, *([freshness_runs] if freshness_runs else [])],
    )
