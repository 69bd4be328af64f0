"""Load the whole code location the way `dagster dev` does and check what users will see in the UI."""

import dagster as dg

from lepton_pipelines.definitions import defs
from lepton_pipelines.sources.registry import load_sources

SAMPLE_SOURCES = {"transactions", "customers", "market_data", "fx_rates", "device_telemetry"}


def test_every_source_is_one_group_with_three_stages():
    graph = defs.resolve_asset_graph()
    sources = {s.name for s in load_sources()}
    assert SAMPLE_SOURCES <= sources
    for name in sources:
        for stage in ("raw", "clean", "governed"):
            key = dg.AssetKey([name, stage])
            assert graph.has(key), key
            assert graph.get(key).group_name == name
        assert dg.AssetKey([name, "raw"]) in graph.get(dg.AssetKey([name, "clean"])).parent_keys
        assert dg.AssetKey([name, "clean"]) in graph.get(dg.AssetKey([name, "governed"])).parent_keys


def test_checks_jobs_schedules_and_sensors_are_registered():
    graph = defs.resolve_asset_graph()
    check_names = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey(["transactions", "clean"])}
    assert {"primary_key_unique", "currency__column_values_to_be_in_set"} <= check_names
    job_names = {j.name for j in defs.resolve_all_job_defs()}
    assert {
        "lakehouse_daily",
        "transactions_job",
        "customers_job",
        "build_model_image",
        "deploy_model",
        "lake_backup",
    } <= job_names
    schedule_names = {s.name for s in defs.schedules}
    assert {"transactions_daily", "customers_daily", "lake_backup_daily"} <= schedule_names
    sensor_names = {s.name for s in defs.sensors}
    assert {
        "landing_zone_sensor",
        "model_version_sensor",
        "image_built_sensor",
        "lepton_run_failure_alert",
    } <= sensor_names


def test_the_main_job_spans_every_batch_daily_source():
    keys = defs.resolve_job_def("lakehouse_daily").asset_layer.executable_asset_keys
    for name in ("transactions", "market_data", "fx_rates"):
        assert dg.AssetKey([name, "governed"]) in keys


def test_ingest_jobs_leave_freshness_to_its_schedule_but_keep_every_other_check():
    """A source job evaluates the stage checks and the schema-change check; freshness is evaluated by the
    freshness sensor (it changes with the clock, not with a materialization)."""
    for job_name in ("transactions_job", "lakehouse_daily"):
        checks = defs.resolve_job_def(job_name).asset_layer.asset_graph.asset_check_keys
        names = {(k.asset_key.to_user_string(), k.name) for k in checks}
        assert ("transactions/governed", "freshness_check") not in names
        assert {
            ("transactions/raw", "column_schema_change"),
            ("transactions/raw", "schema_drift"),
            ("transactions/clean", "primary_key_unique"),
            ("transactions/governed", "reconciliation"),
        } <= names
    freshness = {k for c in defs.asset_checks for k in c.check_keys if k.name == "freshness_check"}
    assert dg.AssetCheckKey(dg.AssetKey(["transactions", "governed"]), "freshness_check") in freshness
    schedule = next(s for s in defs.schedules if s.name == "lepton_freshness_checks_schedule")
    assert schedule.job_name == "lepton_freshness_checks"
    job_checks = defs.resolve_job_def("lepton_freshness_checks").asset_layer.asset_graph.asset_check_keys
    assert {k.name for k in job_checks} == {"freshness_check"} and len(job_checks) == len(freshness)
