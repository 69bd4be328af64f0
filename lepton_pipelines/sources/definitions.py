"""Everything the source registry produces, as one Definitions object."""
from __future__ import annotations

import dagster as dg

from lepton_pipelines.sources.automation import build_landing_sensor, build_source_jobs, build_source_schedules
from lepton_pipelines.sources.factory import build_source_assets
from lepton_pipelines.sources.registry import Source


def build_sources_defs(sources: list[Source]) -> dg.Definitions:
    jobs = build_source_jobs(sources)
    return dg.Definitions(
        assets=[a for s in sources for a in build_source_assets(s)],
        jobs=jobs,
        schedules=build_source_schedules(sources, jobs),
        sensors=[build_landing_sensor(sources, jobs)],
    )
