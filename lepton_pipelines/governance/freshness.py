"""Freshness: how old the newest *data* in ``<source>/governed`` is, against the declared ``freshness.max_lag``.

Why not Dagster's ``build_*_freshness_checks``: they measure when an asset was last materialized, so a
run today over 2013 data reads as "updated 17 seconds ago" and passes. A governed table is fresh when its
newest ``event_time`` is recent: the check reads that column of the newest governed partition (one column
of one file) and compares it with now. A source without an ``event_time`` falls back to the time of the
last materialization, and its check says so.

The checks run on ``FRESHNESS_SCHEDULE_NAME`` (hourly) in their own small job, so they turn red when data
stops arriving even if no pipeline run happens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lepton_pipelines.contract import SourceContract
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake

FRESHNESS_CHECK_NAME = "freshness_check"
FRESHNESS_JOB_NAME = "lepton_freshness_checks"
FRESHNESS_SCHEDULE_NAME = "lepton_freshness_checks_schedule"
FRESHNESS_CRON = "15 * * * *"


def newest_event_time(lake: Lake, source: SourceContract) -> tuple[pd.Timestamp | None, str | None]:
    """The newest ``event_time`` in governed and the file it is in; (None, None) when nothing is governed.

    Only the newest partition's file is read (one column): partitions are days, so the newest data lives
    in the newest ``date=`` folder."""
    column = source.spec.event_time
    folder = lake.table_dir("governed", source.name, None)
    if not folder.exists():
        return None, None
    candidates = (
        sorted((p for p in folder.iterdir() if p.name.startswith("date=")), key=lambda p: p.name, reverse=True)
        if source.spec.is_partitioned
        else [folder]
    )
    for partition in candidates:
        for file in sorted(p for p in partition.iterdir() if p.name.endswith(".parquet")):
            with file.fs.open(file.path, "rb") as handle:
                table = pq.read_table(handle, columns=[column])
            newest = pc.max(table.column(column)).as_py()
            if newest is not None:
                stamp = pd.Timestamp(newest)
                return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")), file.path
    return None, None


def judge_freshness(newest: pd.Timestamp | None, max_lag: timedelta, now: datetime) -> tuple[bool, str, float | None]:
    """(passed, description, age in hours) for the newest data time ``newest``."""
    if newest is None:
        return False, "no governed data yet", None
    age = pd.Timestamp(now) - newest
    hours = age.total_seconds() / 3600
    verdict = "within" if age <= max_lag else "older than"
    return (
        age <= max_lag,
        f"newest data is from {newest.isoformat()} ({_humanize(age)} old), {verdict} max_lag {_humanize(max_lag)}",
        hours,
    )


def _humanize(delta: timedelta | pd.Timedelta) -> str:
    seconds = int(pd.Timedelta(delta).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


def freshness_checks(sources: list[SourceContract]) -> list[dg.AssetChecksDefinition]:
    return [_freshness_check(source) for source in sources if source.spec.freshness is not None]


def _freshness_check(source: SourceContract) -> dg.AssetChecksDefinition:
    key = dg.AssetKey([source.name, "governed"])
    lag = source.spec.freshness.max_lag_timedelta
    basis = (
        f"the newest {source.spec.event_time}"
        if source.spec.event_time
        else "the last materialization (no event_time declared)"
    )

    @dg.asset_check(
        asset=key,
        name=FRESHNESS_CHECK_NAME,
        blocking=False,
        description=f"Fresh when {basis} in {source.name}/governed is at most {source.spec.freshness.max_lag} old.",
    )
    def freshness(
        context, lake: LakeResource
    ) -> dg.AssetCheckResult:  # no annotation: see Dagster on `from __future__`
        now = datetime.now(UTC)
        if source.spec.event_time:
            newest, where = newest_event_time(lake.get(), source)
        else:
            event = context.instance.get_latest_materialization_event(key)
            newest = pd.Timestamp(event.timestamp, unit="s", tz="UTC") if event else None
            where = None
        passed, description, hours = judge_freshness(newest, lag, now)
        metadata: dict[str, Any] = {"max_lag_hours": lag.total_seconds() / 3600}
        if newest is not None:
            metadata.update(newest_data_time=newest.isoformat(), data_age_hours=float(hours))
        if where:
            metadata["read_from"] = dg.MetadataValue.path(where)
        return dg.AssetCheckResult(
            passed=passed, severity=dg.AssetCheckSeverity.WARN, description=description, metadata=metadata
        )

    return freshness


def freshness_schedule(
    checks: list[dg.AssetChecksDefinition],
) -> tuple[dg.UnresolvedAssetJobDefinition | None, dg.ScheduleDefinition | None]:
    """A job of only the freshness checks and the hourly schedule that runs it."""
    if not checks:
        return None, None
    keys = [key for check in checks for key in check.check_keys]
    job = dg.define_asset_job(
        FRESHNESS_JOB_NAME,
        selection=dg.AssetSelection.checks(*keys),
        description="Evaluates every source's freshness check (data age of governed).",
    )
    schedule = dg.ScheduleDefinition(
        name=FRESHNESS_SCHEDULE_NAME,
        cron_schedule=FRESHNESS_CRON,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return job, schedule
