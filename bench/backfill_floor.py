"""The floor of ``bench/backfill.py``: a code location whose source does no data work.

Three partitioned assets ``<floor source>/raw → clean → governed`` built from the same pieces as the real
source's, so the shape cannot drift from the real one: ``factory._common`` (partitions, multi-run
BackfillPolicy, IO manager key, retry policy, tags), ``factory._partitioned_checks`` over
``governance.raw/clean/governed_check_specs``, the freshness and column-schema-change checks
``governance.definitions`` adds on a source's assets, and the source job of ``automation.build_source_jobs``.
What each step records is what the real step records for Dagster: per partition one materialization (a
tiny metadata dict, scoped to its partition, as ``factory._run_partition_range`` does) and one passed
result per check spec, turned into per-partition ``AssetCheckEvaluation``s by
``factory._range_check_evaluations`` itself. Nothing is written to the lake: the lake IO manager key is
bound to an IO manager that stores nothing (the freshness check only looks for a governed folder the floor
never makes; the column-schema check compares materialization metadata). What a backfill of this source
costs is therefore Dagster's own per-partition and per-run cost — the floor the real backfill cannot go
under on the same instance.

The source is the YAML file named by ``$LEPTON_FLOOR_SOURCE`` (``bench/backfill.py`` writes it: the shipped
transactions source renamed). Loaded by ``dagster-webserver``/``dagster-daemon`` as a ``python_file``
location beside the repo's own (``DagsterServices(extra_locations=...)``).
"""

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from lepton_pipelines.governance import clean_check_specs, governed_check_specs, raw_check_specs
from lepton_pipelines.governance.definitions import build_governance_defs
from lepton_pipelines.resources import RESOURCES
from lepton_pipelines.sources.automation import SOURCE_JOB_EXECUTOR, build_source_jobs, source_job_name
from lepton_pipelines.sources.factory import (
    LAKE_IO_KEY,
    _common,
    _partitioned_checks,
    _range_check_evaluations,
    asset_key,
)
from lepton_pipelines.sources.registry import Source, SourceRegistryError, load_source_file

FLOOR_SOURCE_ENV = "LEPTON_FLOOR_SOURCE"
STAGES = {"raw": raw_check_specs, "clean": clean_check_specs, "governed": governed_check_specs}


class StoreNothing(dg.IOManager):
    """The floor's steps hand over no data: what they output is dropped, and nothing reads it back."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        return None

    def load_input(self, context: dg.InputContext) -> Any:
        raise NotImplementedError("the floor assets are linked by deps, not inputs")


def passed_results(specs: list[dg.AssetCheckSpec]) -> list[dg.AssetCheckResult]:
    """One passed result per check spec, as the real step yields one result per spec."""
    return [dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=True) for spec in specs]


def floor_metadata(zone: str, partition: str) -> dict[str, Any]:
    """A tiny materialization metadata dict: the real one carries path, rows, schema and preview."""
    return {"lepton/floor": True, "zone": zone, "partition": partition}


def _floor_asset(source: Source, zone: str) -> dg.AssetsDefinition:
    checks = _partitioned_checks(source, STAGES[zone](source))
    key = asset_key(source.name, zone)
    upstream = (
        [dg.AssetKey(k) for k in source.connector.upstream_assets(source.name)]
        if zone == "raw"
        else [asset_key(source.name, "raw" if zone == "clean" else "clean")]
    )

    @dg.asset(
        **_common(source, zone, f"Floor of the {zone} stage: Dagster's records only, no data work."),
        check_specs=checks,
        deps=upstream,
        output_required=zone != "governed",
    )
    def compute(context: dg.AssetExecutionContext) -> Iterator[Any]:
        if context.has_partition_key:  # one partition: the events go to Dagster as the real body's do
            yield dg.Output(None, metadata=floor_metadata(zone, context.partition_key))
            yield from passed_results(checks)
            return
        # a range (a backfill run): as factory._run_partition_range, one materialization per partition
        # with its own metadata, one Output at the end, then each check result recorded for its partition
        partitions = list(context.partition_keys)
        for partition in partitions:
            context.add_asset_metadata(floor_metadata(zone, partition), partition_key=partition)
        yield dg.Output(None)
        yield from _range_check_evaluations(
            context, key, [(partition, result) for partition in partitions for result in passed_results(checks)]
        )

    return compute


def floor_source(path: str | None = None) -> Source:
    """The floor's source from its YAML file (``$LEPTON_FLOOR_SOURCE``), validated as the registry does."""
    path = path or os.environ.get(FLOOR_SOURCE_ENV)
    if not path:
        raise RuntimeError(f"{FLOOR_SOURCE_ENV} names the floor source's YAML file (bench/backfill.py writes it)")
    source, problems = load_source_file(Path(path))
    if source is None:
        raise SourceRegistryError(problems)
    return source


def build_floor_defs(source: Source) -> dg.Definitions:
    with warnings.catch_warnings():  # the same beta/preview APIs as the factory's assets
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        assets = [_floor_asset(source, zone) for zone in STAGES]
    return dg.Definitions(
        assets=assets,
        # The checks the real location adds on the source's assets (freshness on governed, column-schema
        # change on raw), built by the same function: the source job and a backfill of the three assets run
        # them as in the real location (governance's own assets, the scorecard and catalog, are left out).
        asset_checks=list(build_governance_defs([source]).asset_checks or []),
        jobs=[job for job in build_source_jobs([source]) if job.name == source_job_name(source.name)],
        executor=SOURCE_JOB_EXECUTOR,
        resources={"lake": RESOURCES["lake"], LAKE_IO_KEY: StoreNothing()},
    )


defs = build_floor_defs(floor_source())
