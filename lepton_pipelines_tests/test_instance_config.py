"""The local dagster.yaml (the repo root's dagster.yaml, the embedded default `bin/demo` and `bin/ui` use)
loads as a Dagster instance with SQLite storage under $DAGSTER_HOME and the run guards the platform relies on."""

import shutil
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_root_instance_config_loads_with_the_run_guards(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_runs() == [] and (tmp_path / "history" / "runs.db").exists()  # stored under $DAGSTER_HOME
        limits = {
            limit["key"]: limit for limit in instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        }
        assert (
            limits["lepton/mqtt-client"]["limit"] == 1
            and limits["lepton/mqtt-client"]["value"]["applyLimitPerUniqueValue"]
        )
        assert (
            limits["lepton/deploy-model"]["limit"] == 1
            and limits["lepton/deploy-model"]["value"]["applyLimitPerUniqueValue"]
        )
        assert {"lepton/image-build", "lepton/lake-backup"} <= set(limits)
        assert instance.run_retries_enabled and instance.run_monitoring_enabled
        # a failed step (a missing setting, a failed check) is not re-run; crashed runs are
        assert not instance.run_retries_retry_on_asset_or_op_failure
        # a launched run waits at most a second for the daemon to dequeue it (bench/launch.py)
        assert instance.run_coordinator.dequeue_interval_seconds == 1 and instance.run_coordinator.dequeue_use_threads
