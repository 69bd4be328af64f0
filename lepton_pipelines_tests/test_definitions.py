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
    assert {"lakehouse_daily", "transactions_job", "customers_job", "build_model_image", "deploy_model", "lake_backup"} <= job_names
    schedule_names = {s.name for s in defs.schedules}
    assert {"transactions_daily", "customers_daily", "lake_backup_daily"} <= schedule_names
    sensor_names = {s.name for s in defs.sensors}
    assert {"landing_zone_sensor", "model_version_sensor", "image_built_sensor", "lepton_run_failure_alert"} <= sensor_names


def test_the_main_job_spans_every_batch_daily_source():
    keys = defs.resolve_job_def("lakehouse_daily").asset_layer.executable_asset_keys
    for name in ("transactions", "market_data", "fx_rates"):
        assert dg.AssetKey([name, "governed"]) in keys
