"""Dagster wiring of the marts and the dashboard: thin — SQL in ``marts.py``, contracts in ``checks.py``,
numbers and charts in ``summaries.py``, the page in ``dashboard.py``.

Each mart step: build the day's SQL, run it in DuckDB over the lake, hand the frame to the analytics
IO manager (which publishes ``<lake>/marts/<name>/date=…/data.parquet`` atomically), then run the
mart's checks against the file just published.
"""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from lepton_pipelines.analytics import checks as mart_checks
from lepton_pipelines.analytics import marts
from lepton_pipelines.analytics.dashboard import DASHBOARD_FILE, DashboardData, render_dashboard
from lepton_pipelines.analytics.engine import MARTS_ZONE, connect, parquet_scan, table_files, window
from lepton_pipelines.analytics.summaries import SUMMARIES, chart_uri
from lepton_pipelines.lake.atomic import write_atomic
from lepton_pipelines.lake.io_manager import LakeIOManager, LakeParquetIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake, partition_dirname

GROUP = "analytics"
IO_MANAGER_KEY = "analytics_io"
DASHBOARD_KEY = dg.AssetKey(["analytics", "dashboard"])
DASHBOARD_HISTORY_DAYS = 30


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


class AnalyticsParquetIOManager(LakeParquetIOManager):
    """The lake IO manager with the analytics layout: ``[analytics, <mart>]`` → ``<lake>/marts/<mart>/`` and
    ``[models, <model>, scores]`` → ``<lake>/models/<model>/scores/`` (beside the model's registry)."""

    def get_asset_relative_path(self, context) -> UPath:
        path = context.asset_key.path
        if len(path) == 2 and path[0] == "analytics":
            return UPath(MARTS_ZONE, path[1])
        if len(path) == 3 and path[0] == "models" and path[2] == "scores":
            return UPath("models", path[1], "scores")
        return super().get_asset_relative_path(context)


class AnalyticsIOManager(LakeIOManager):
    """Same configuration as the lake IO manager: the nested ``LakeResource``."""

    def create_io_manager(self, context) -> AnalyticsParquetIOManager:
        return AnalyticsParquetIOManager(self.lake.get())


def window_dep(key: dg.AssetKey, days: int) -> dg.AssetDep:
    return dg.AssetDep(
        key,
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-(days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
        ),
    )


def _numbers_metadata(numbers: dict[str, float | None]) -> dict[str, Any]:
    # Dagster plots numeric metadata over materializations; a None (not measurable today) is left out
    # rather than written as 0, which would draw a false point on the plot.
    return {key: dg.MetadataValue.float(value) for key, value in numbers.items() if value is not None}


def mart_asset(
    name: str,
    description: str,
    deps: list[dg.AssetDep | dg.AssetKey],
    partitions_def: dg.PartitionsDefinition,
    build: Callable[[Any, Lake, str], marts.MartQuery],
) -> dg.AssetsDefinition:
    key = mart_key(name)
    check_names = mart_checks.CHECKS_BY_MART[name]

    @dg.asset(
        key=key,
        group_name=GROUP,
        partitions_def=partitions_def,
        deps=deps,
        io_manager_key=IO_MANAGER_KEY,
        kinds={"duckdb", "parquet"},
        description=description,
        check_specs=[
            dg.AssetCheckSpec(check, asset=key, description=mart_checks.CHECK_DESCRIPTIONS[check])
            for check in check_names
        ],
    )
    def _mart(context: dg.AssetExecutionContext, lake: LakeResource) -> Iterator[Any]:
        store = lake.get()
        partition = context.partition_key
        con = connect(store)
        try:
            try:
                query = build(con, store, partition)
            except marts.MartInputError as error:
                raise dg.Failure(str(error), allow_retries=False) from None
            for note in query.notes:
                context.log.warning(f"{name} {partition}: {note}")
            frame = marts.run(con, query)
            numbers, draw = SUMMARIES[name]
            yield dg.Output(
                frame,
                metadata={
                    **_numbers_metadata(numbers(frame)),
                    "chart": dg.MetadataValue.md(f"![{name} {partition}]({chart_uri(draw, frame)})"),
                    "inputs": dg.MetadataValue.json(query.inputs),
                    "notes": dg.MetadataValue.json(list(query.notes)),
                    "sql": dg.MetadataValue.md(f"```sql\n{_compact(query.sql)}\n```"),
                },
            )
            published = table_files(store, MARTS_ZONE, name).files([partition])
            for outcome in mart_checks.check_mart(con, store, query, published):
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=outcome.name,
                    passed=outcome.passed,
                    description=outcome.description,
                    severity=dg.AssetCheckSeverity.WARN if outcome.warn_only else dg.AssetCheckSeverity.ERROR,
                    metadata=outcome.metadata,
                )
        finally:
            con.close()

    return _mart


def _compact(sql: str, max_list: int = 160) -> str:
    """The SQL for the asset page, with inlined file lists shortened (they can run to thousands of characters)."""
    import re

    return re.sub(rf"\[('[^\]]{{{max_list},}}?)\]", lambda m: m.group(0)[:max_list] + " …]", sql.strip())


def build_device_health(con, lake: Lake, partition: str) -> marts.MartQuery:
    from lepton_pipelines.analytics.anomalies import device_anomaly_flags

    try:
        flags, note = device_anomaly_flags(con, lake, partition, marts.ANOMALY_MODEL)
    except FileNotFoundError:
        flags, note = None, "no governed telemetry"
    if flags is not None:
        con.register("anomaly_flags", flags)
    query = marts.device_health_sql(lake, partition, "anomaly_flags" if flags is not None else None)
    extra = () if flags is not None else (f"anomaly_rate is NULL: {note}",)
    return marts.MartQuery(query.name, query.partition, query.sql, query.inputs, query.notes + extra)


def dashboard_asset(partitions_def: dg.PartitionsDefinition, scores_key: dg.AssetKey) -> dg.AssetsDefinition:
    names = list(mart_checks.CHECKS_BY_MART)

    @dg.asset(
        key=DASHBOARD_KEY,
        group_name=GROUP,
        partitions_def=partitions_def,
        deps=[mart_key(n) for n in names if n != "daily_kpis"]
        + [window_dep(mart_key("daily_kpis"), DASHBOARD_HISTORY_DAYS), scores_key],
        kinds={"html", "plotly"},
        description="A self-contained HTML dashboard per day (KPIs and their 30-day trend, risk scores, customer "
        "segments, market volatility, device health, source quality) at "
        "`<lake>/marts/dashboard/date=…/dashboard.html`. "
        "Everything is inline (plotly.js included): it opens from disk or a bucket, offline.",
    )
    def dashboard(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        partition = context.partition_key
        con = connect(store)
        try:
            data = load_dashboard_data(con, store, partition)
        finally:
            con.close()
        if data.kpis.empty and "daily_kpis" in " ".join(data.missing):
            raise dg.Failure(
                f"analytics/daily_kpis has no partition {partition}: materialize it first", allow_retries=False
            )
        page = render_dashboard(data).encode("utf-8")
        target = store.path(MARTS_ZONE, "dashboard", partition_dirname(partition), DASHBOARD_FILE)
        write_atomic(target, page)
        metadata: dict[str, Any] = {
            "path": dg.MetadataValue.path(str(target)),
            "bytes": len(page),
            "charts": page.count(b'class="chart"'),
            "missing_marts": dg.MetadataValue.json(data.missing),
        }
        if store.is_local:
            metadata["open"] = dg.MetadataValue.url(target.as_uri())
        return dg.MaterializeResult(metadata=metadata)

    return dashboard


def load_dashboard_data(con, lake: Lake, partition: str) -> DashboardData:
    missing: list[str] = []

    def read(*parts: str, partitions: list[str] | None = None) -> pd.DataFrame:
        files = table_files(lake, *parts).files(partitions if partitions is not None else [partition])
        if not files:
            missing.append("/".join(parts) + f" ({partition})")
            return pd.DataFrame()
        return con.execute(f"SELECT * FROM {parquet_scan(files)}").df()

    kpis = read(MARTS_ZONE, "daily_kpis")
    history = (
        read(MARTS_ZONE, "daily_kpis", partitions=window(partition, DASHBOARD_HISTORY_DAYS)) if not kpis.empty else kpis
    )
    return DashboardData(
        partition=partition,
        kpis=kpis,
        kpi_history=history,
        customers=read(MARTS_ZONE, "customer_360"),
        market=read(MARTS_ZONE, "market_risk"),
        devices=read(MARTS_ZONE, "device_health"),
        quality=read(MARTS_ZONE, "daily_source_quality"),
        scores=read("models", marts.RISK_MODEL, "scores"),
        missing=missing,
    )
