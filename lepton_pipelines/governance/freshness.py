"""Freshness checks from each source's declared ``freshness.max_lag``, on ``<source>/governed``.

A daily partition for day D is due ``max_lag`` after D ends. When that lag is under a day it is exactly
Dagster's time-partition freshness check with a deadline cron at ``max_lag`` past midnight UTC. Longer
lags cannot be said with one daily cron, so they use the last-update check (newest materialization no
older than ``max_lag``), as do unpartitioned sources.
"""
from __future__ import annotations

from datetime import timedelta

import dagster as dg

from lepton_pipelines.sources.registry import Source

FRESHNESS_SENSOR_NAME = "lepton_freshness_checks_sensor"


def deadline_cron_for_daily(max_lag: timedelta) -> str | None:
    if max_lag >= timedelta(days=1):
        return None
    minutes = int(max_lag.total_seconds() // 60)
    return f"{minutes % 60} {minutes // 60} * * *"


def freshness_checks(sources: list[Source]) -> list[dg.AssetChecksDefinition]:
    checks: list[dg.AssetChecksDefinition] = []
    for source in sources:
        if source.spec.freshness is None:
            continue
        key = dg.AssetKey([source.name, "governed"])
        lag = source.spec.freshness.max_lag_timedelta
        cron = deadline_cron_for_daily(lag) if source.spec.is_partitioned else None
        if cron:
            checks.extend(dg.build_time_partition_freshness_checks(assets=[key], deadline_cron=cron, timezone="UTC"))
        else:
            checks.extend(dg.build_last_update_freshness_checks(assets=[key], lower_bound_delta=lag))
    return checks


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition | None:
    """Runs each freshness check when it could have changed state (Dagster's own scheduling logic)."""
    if not checks:
        return None
    return dg.build_sensor_for_freshness_checks(freshness_checks=checks, name=FRESHNESS_SENSOR_NAME,
                                                default_status=dg.DefaultSensorStatus.RUNNING)
