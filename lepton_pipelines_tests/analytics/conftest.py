"""A lake that went through the real pipeline on the sample data, for two days, with the analytics job
run on both: what the marts are tested against is what a user of ``bin/demo`` would have."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SAMPLE_DAYS = ("2026-11-24", "2026-11-25")
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory):
    """Sample landing data → lakehouse jobs, models (demo), then ``analytics_daily`` for each day."""
    import dagster as dg

    from lepton_pipelines import demo
    from lepton_pipelines.lake.store import Lake

    base = tmp_path_factory.mktemp("analytics-sample")
    home = base / "dagster_home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("LEPTON_LAKE_URL", str(base / "lake"))
        env.delenv("LEPTON_S3_ENDPOINT_URL", raising=False)
        # one demo over exactly the sample days (the demo fills every day up to --date)
        assert demo.main(["--date", SAMPLE_DAYS[-1], "--days", str(len(SAMPLE_DAYS)), "--size", "tiny"]) == 0
        lake = Lake(str(base / "lake"))
        champion = make_champion(lake, "transaction_risk", SAMPLE_DAYS)
        from lepton_pipelines.analytics.definitions import build_analytics_defs
        from lepton_pipelines.resources import bind_resources
        from lepton_pipelines.sources.registry import load_sources

        defs = bind_resources(build_analytics_defs(load_sources()))

        job = defs.resolve_job_def("analytics_daily")
        results = {}
        instance = dg.DagsterInstance.get()
        for day in SAMPLE_DAYS:
            result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
            failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
            assert result.success, f"analytics_daily {day} failed: {failures}"
            results[day] = result
        yield {"lake": lake, "results": results, "base": base, "champion": champion}


def make_champion(lake, model: str, days) -> str:
    """Train ``model`` on the governed days with the project's training code and make it champion by hand
    (as an operator would with a rollback): the demo's promotion thresholds are not reliably met by a
    few hundred sample rows, and the marts need a known version, not a lucky one."""
    from lepton_pipelines.models.config import load_models, model_by_name
    from lepton_pipelines.models.registry import ModelRegistry, build_card, decide_promotion
    from lepton_pipelines.models.training import library_versions, serialize, train_model

    spec = model_by_name(model, load_models())
    frame = pd.concat([lake.read_table("governed", spec.source, d) for d in days], ignore_index=True)
    trained = train_model(spec, frame)
    registry = ModelRegistry(lake.path("models"), model)
    card = build_card(spec, trained.metrics, trained.sample_input, library_versions(), {"partitions": list(days)})
    registered = registry.write_version(serialize(trained.estimator), card)
    production = registry.alias("production")
    registry.commit(registered, decide_promotion(registered.version, trained.metrics, production, None, spec.promotion))
    registry.set_alias("production", registered.version, "analytics test fixture: a known champion")
    return registered.version


def governed(lake, source: str, partition: str | None = None) -> pd.DataFrame:
    return lake.read_table("governed", source, partition)


def mart(lake, name: str, partition: str) -> pd.DataFrame:
    from lepton_pipelines.lake.store import read_parquet_dir

    return read_parquet_dir(lake.path("marts", name, f"date={partition}"))


def check_results(result, asset: str) -> dict[str, object]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key.to_user_string() == asset
    }


def materialization(result, asset: str):
    for e in result.all_events:
        if (
            e.event_type_value == "ASSET_MATERIALIZATION"
            and e.event_specific_data.materialization.asset_key.to_user_string() == asset
        ):
            return e.event_specific_data.materialization
    raise AssertionError(f"{asset} was not materialized")
