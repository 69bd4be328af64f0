"""Jobs, schedules and the landing-zone sensor for the declared sources.

* one job per source (``<source>_job``) and the main ``lakehouse_daily`` job over every daily source;
* a daily schedule per batch source (cron from its YAML ``schedule``), materializing yesterday's
  partition after the export window closes;
* ``landing_zone_sensor``: per tick, one run per source and run of consecutive changed partitions (a
  partition range, at most the backfill policy's partitions per run). A partition is changed when its
  set of file versions (path + size + mtime/ETag) differs from the one recorded in the sensor's cursor,
  so each version of a file is processed once; the run key is derived from exactly those versions, so a
  tick evaluated twice never launches twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg

from lepton_pipelines.connectors.files import landing_run_key, list_landing_files
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.sources.factory import asset_key, backfill_policy_for, partitions_for
from lepton_pipelines.sources.registry import Source

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
UNPARTITIONED = ""  # cursor key of an unpartitioned source's single "partition"

MAIN_JOB = "lakehouse_daily"
MAX_RUNTIME_TAG = "dagster/max_runtime"

# How the steps of a run execute (see README "Launch path"). A source's raw → clean → governed is a
# chain: no two steps can run at once, so a process per step (Dagster's default multiprocess executor
# starts a fresh interpreter that re-imports the code location and GX for every step) buys nothing and
# cost 3x the in-process time on a tiny partition. The main job spans independent sources, so it keeps
# parallel steps, but forks them from a forkserver that has already imported the code location and GX
# once per run. Both keep one run in one process tree: with the K8sRunLauncher one run is one pod.
SOURCE_JOB_EXECUTOR = dg.in_process_executor
MAIN_JOB_EXECUTOR = dg.multiprocess_executor.configured(
    {
        "start_method": {
            "forkserver": {
                "preload_modules": [
                    "lepton_pipelines.definitions",
                    "great_expectations",
                    "lepton_pipelines.governance.validation",
                ]
            }
        }
    },
    name="forkserver_multiprocess",
)


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
            executor_def=SOURCE_JOB_EXECUTOR,
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
                executor_def=MAIN_JOB_EXECUTOR,
            )
        )
    return jobs


def build_source_schedules(
    sources: list[Source], jobs: list[dg.UnresolvedAssetJobDefinition]
) -> list[dg.ScheduleDefinition]:
    by_name = {j.name: j for j in jobs}
    schedules = []
    for s in sources:
        if not s.spec.schedule or s.connector.type == "mqtt":
            continue  # streaming sources are driven by the landing sensor, not the clock
        job = by_name[source_job_name(s.name)]
        if s.spec.is_partitioned:
            minute, hour = (int(field) for field in s.spec.schedule.split()[:2])
            schedules.append(
                dg.build_schedule_from_partitioned_job(
                    job, name=f"{s.name}_daily", minute_of_hour=minute, hour_of_day=hour
                )
            )
        else:
            schedules.append(
                dg.ScheduleDefinition(
                    name=f"{s.name}_daily", job=job, cron_schedule=s.spec.schedule, execution_timezone="UTC"
                )
            )
    return schedules


@dataclass
class LandingPlan:
    requests: list[dg.RunRequest]
    cursor: dict[str, dict[str, str]]  # source → partition ("" when unpartitioned) → digest of its file versions
    # Landed days the source's partitions do not include (before its start_date): what to change, per day.
    outside: list[str] = field(default_factory=list)


def partition_digest(files: list) -> str:
    """Identifies a partition's exact set of landed file versions (order-independent)."""
    return hashlib.sha256("\n".join(sorted(landing_run_key(f) for f in files)).encode()).hexdigest()[:16]


def consecutive_chunks(partitions: list[str], max_per_run: int) -> list[list[str]]:
    """Sorted daily partition keys split into runs of consecutive days, each at most ``max_per_run``
    long: a range run never re-materializes a day whose files did not change."""
    chunks: list[list[str]] = []
    previous: date | None = None
    for key in sorted(partitions):
        day = date.fromisoformat(key)
        if chunks and previous is not None and day - previous == timedelta(days=1) and len(chunks[-1]) < max_per_run:
            chunks[-1].append(key)
        else:
            chunks.append([key])
        previous = day
    return chunks


def plan_landing_runs(sources: list[Source], lake, cursor: dict[str, dict[str, str]] | None = None) -> LandingPlan:
    """Pure planning step of the sensor (kept separate so it is testable without a sensor context).

    Lists each source's landing folder once (paginated on S3), digests each partition's file versions,
    and requests one run per source and range of consecutive changed partitions. Returns the new cursor:
    the digests of every partition seen, so the next tick requests only what changed since.
    """
    seen = cursor or {}
    requests: list[dg.RunRequest] = []
    outside: list[str] = []
    new_cursor: dict[str, dict[str, str]] = {}
    for s in sources:
        settings = s.connector.landing_settings()
        if settings is None:
            continue
        grouped: dict[str, list] = defaultdict(list)
        for landed in list_landing_files(lake, s.name, settings, partitioned=s.spec.is_partitioned):
            if s.spec.is_partitioned and landed.partition_key is None:
                continue  # a stray file outside any date= folder cannot be attributed to a partition
            grouped[landed.partition_key if s.spec.is_partitioned else UNPARTITIONED].append(landed)
        if s.spec.is_partitioned:
            for partition in sorted(p for p in grouped if p < s.spec.start_date):
                # Dagster would refuse the run with a generic "partition key not in partitions" error.
                outside.append(
                    f"{s.name}: {len(grouped[partition])} landed file(s) in date={partition}, before the source's "
                    f"start_date {s.spec.start_date}: set start_date in {s.spec.origin or s.name + '.yaml'} "
                    f'(quoted, e.g. "{partition}") to process them'
                )
                del grouped[partition]
        digests = {partition: partition_digest(files) for partition, files in grouped.items()}
        new_cursor[s.name] = digests
        before = seen.get(s.name, {})
        changed = sorted(p for p, d in digests.items() if before.get(p) != d)
        if not changed:
            continue
        if not s.spec.is_partitioned:
            requests.append(_landing_request(s, None, None, grouped[UNPARTITIONED], digests))
            continue
        policy = backfill_policy_for(s)
        per_run = policy.max_partitions_per_run if policy and policy.max_partitions_per_run else len(changed)
        for chunk in consecutive_chunks(changed, per_run):
            files = [f for p in chunk for f in grouped[p]]
            requests.append(_landing_request(s, chunk[0], chunk[-1], files, {p: digests[p] for p in chunk}))
    return LandingPlan(requests=requests, cursor=new_cursor, outside=outside)


def _landing_request(
    source: Source, first: str | None, last: str | None, files: list, digests: dict[str, str]
) -> dg.RunRequest:
    batch = hashlib.sha256(json.dumps(sorted(digests.items())).encode()).hexdigest()[:16]
    where = "all" if first is None else first if first == last else f"{first}..{last}"
    tags = {"lepton/landing-files": str(len(files))}
    if len(files) == 1:
        tags["lepton/landing-file"] = files[0].path[-200:]
    partition_key = None
    if first is not None and first == last:
        partition_key = first
    elif first is not None:
        tags.update({RANGE_START_TAG: first, RANGE_END_TAG: last})
    return dg.RunRequest(
        run_key=f"{source.name}:{where}:{len(files)}:{batch}",
        job_name=source_job_name(source.name),
        partition_key=partition_key,
        tags=tags,
    )


def build_landing_sensor(sources: list[Source], jobs: list[dg.UnresolvedAssetJobDefinition]) -> dg.SensorDefinition:
    source_jobs = [j for j in jobs if j.name in {source_job_name(s.name) for s in sources}]

    @dg.sensor(
        name="landing_zone_sensor",
        jobs=source_jobs,
        minimum_interval_seconds=60,
        description="Per tick, one run per source and range of consecutive partitions whose landed files changed "
        "in <lake>/landing/<source>/ (file versions: path + size + mtime/ETag; each version is processed once).",
    )
    def landing_zone_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        cursor = json.loads(context.cursor) if context.cursor else {}
        plan = plan_landing_runs(sources, lake.get(), cursor)
        new_cursor = json.dumps(plan.cursor, sort_keys=True, separators=(",", ":"))
        for problem in plan.outside:
            context.log.warning(problem)
        if not plan.requests:
            why = "no new or changed landing files" + ("; " + "; ".join(plan.outside[:5]) if plan.outside else "")
            return dg.SensorResult(skip_reason=dg.SkipReason(why), cursor=new_cursor)
        return dg.SensorResult(run_requests=plan.requests, cursor=new_cursor)

    return landing_zone_sensor
