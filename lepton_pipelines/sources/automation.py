"""Jobs, schedules and the landing-zone sensor for the declared sources.

* one job per source (``<source>_job``) and the main ``lakehouse_daily`` job over every daily source;
* a daily schedule per batch source (cron from its YAML ``schedule``), materializing yesterday's
  partition after the export window closes;
* ``landing_zone_sensor``: one run per new or changed landing file, keyed by path + size + mtime/ETag so
  each version of a file runs exactly once, targeting the partition named by the file's ``date=`` folder.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict

import dagster as dg

from lepton_pipelines.connectors.files import landing_run_key, list_landing_files
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.sources.factory import asset_key, partitions_for
from lepton_pipelines.sources.registry import Source

MAIN_JOB = "lakehouse_daily"
MAX_RUNTIME_TAG = "dagster/max_runtime"


def source_job_name(source: str) -> str:
    return f"{source}_job"


# Dagster's name for the checks ``build_*_freshness_checks`` make (see ``governance.freshness``).
FRESHNESS_CHECK_NAME = "freshness_check"


def source_selection(source: Source) -> dg.AssetSelection:
    """The three stages with their checks — except freshness, which the freshness sensor evaluates when
    it can change state; evaluating it in every ingest run would only repeat the sensor's work."""
    assets = dg.AssetSelection.assets(*(asset_key(source.name, z) for z in ("raw", "clean", "governed")))
    if source.spec.freshness is None:
        return assets
    return assets - dg.AssetSelection.checks(dg.AssetCheckKey(asset_key(source.name, "governed"), FRESHNESS_CHECK_NAME))


def build_source_jobs(sources: list[Source]) -> list[dg.UnresolvedAssetJobDefinition]:
    jobs = [
        dg.define_asset_job(
            source_job_name(s.name),
            selection=source_selection(s),
            description=f"Ingest, clean and certify the {s.name} source (raw → clean → governed).",
            tags={MAX_RUNTIME_TAG: "3600"},
        )
        for s in sources
    ]
    # The main job spans the batch daily sources sharing the most common partitions definition (a job
    # has one); streaming sources have their own open-ended partitions and run from the landing sensor.
    daily = [s for s in sources if s.spec.is_partitioned and s.connector.type != "mqtt"]
    if daily:
        groups: dict[str, list[Source]] = defaultdict(list)
        for s in daily:
            groups[repr(partitions_for(s))].append(s)
        same = max(groups.values(), key=len)
        selection = dg.AssetSelection.assets()
        for s in same:
            selection = selection | source_selection(s)
        jobs.append(
            dg.define_asset_job(
                MAIN_JOB,
                selection=selection,
                description="The main job: every daily source, raw → clean → governed, for one partition.",
                tags={MAX_RUNTIME_TAG: "7200"},
            )
        )
    return jobs


def build_source_schedules(sources: list[Source], jobs: list[dg.UnresolvedAssetJobDefinition]) -> list[dg.ScheduleDefinition]:
    by_name = {j.name: j for j in jobs}
    schedules = []
    for s in sources:
        if not s.spec.schedule or s.connector.type == "mqtt":
            continue  # streaming sources are driven by the landing sensor, not the clock
        job = by_name[source_job_name(s.name)]
        if s.spec.is_partitioned:
            minute, hour = (int(field) for field in s.spec.schedule.split()[:2])
            schedules.append(
                dg.build_schedule_from_partitioned_job(job, name=f"{s.name}_daily", minute_of_hour=minute, hour_of_day=hour)
            )
        else:
            schedules.append(dg.ScheduleDefinition(name=f"{s.name}_daily", job=job, cron_schedule=s.spec.schedule, execution_timezone="UTC"))
    return schedules


def plan_landing_runs(sources: list[Source], lake) -> list[dg.RunRequest]:
    """Pure planning step of the sensor (kept separate so it is testable without a sensor context).

    Batch drops: one run per file version (run key = path + size + mtime/ETag). Streaming sources whose
    collector commits many micro-batches: one run per partition covering its current set of files, so a
    tick with fifty new batches starts one run, and an unchanged partition never runs again.
    """
    requests: list[dg.RunRequest] = []
    for s in sources:
        settings = s.connector.landing_settings()
        if settings is None:
            continue
        grouped: dict[str | None, list] = defaultdict(list)
        for landed in list_landing_files(lake, s.name, settings, partitioned=s.spec.is_partitioned):
            grouped[landed.partition_key].append(landed)
        for partition, files in sorted(grouped.items(), key=lambda kv: str(kv[0])):
            if s.spec.is_partitioned and partition is None:
                continue  # a stray file outside any date= folder cannot be attributed to a partition
            files = sorted(files, key=lambda f: f.path)
            partition_key = partition if s.spec.is_partitioned else None
            if s.connector.landing_runs == "partition":
                digest = hashlib.sha256("\n".join(landing_run_key(f) for f in files).encode()).hexdigest()[:16]
                requests.append(
                    dg.RunRequest(
                        run_key=f"{s.name}:{partition}:{len(files)}:{digest}",
                        job_name=source_job_name(s.name),
                        partition_key=partition_key,
                        tags={"lepton/landing-files": str(len(files))},
                    )
                )
                continue
            for landed in files:
                requests.append(
                    dg.RunRequest(
                        run_key=landing_run_key(landed),
                        job_name=source_job_name(s.name),
                        partition_key=partition_key,
                        tags={"lepton/landing-file": landed.path[-200:]},
                    )
                )
    return requests


def build_landing_sensor(sources: list[Source], jobs: list[dg.UnresolvedAssetJobDefinition]) -> dg.SensorDefinition:
    source_jobs = [j for j in jobs if j.name in {source_job_name(s.name) for s in sources}]

    @dg.sensor(
        name="landing_zone_sensor",
        jobs=source_jobs,
        minimum_interval_seconds=60,
        description="Requests one run per new or changed file in <lake>/landing/<source>/ (run key: path + size + mtime/ETag).",
    )
    def landing_zone_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        requests = plan_landing_runs(sources, lake.get())
        if not requests:
            return dg.SkipReason("no landing files")
        return requests

    return landing_zone_sensor
