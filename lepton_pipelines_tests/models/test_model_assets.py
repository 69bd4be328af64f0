"""The training assets, materialized with Dagster over a temporary lake holding governed Parquet."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.delivery.definitions import defs as delivery_defs
from lepton_pipelines.governance import quality_store
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.models.assets import THRESHOLD_CHECK, build_model_asset
from lepton_pipelines.models.config import load_models, model_by_name
from lepton_pipelines.models.definitions import defs as models_defs
from lepton_pipelines.models.registry import ModelRegistry
from lepton_pipelines.models.training import deserialize
from lepton_pipelines.resources import bind_resources
from lepton_pipelines_tests.models import synthetic

pytestmark = pytest.mark.timeout(240)
SIGNAL_DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
NOISE_DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]


def materialize(asset: dg.AssetsDefinition, lake: Lake) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], resources={"lake": LakeResource(url=lake.url)}, raise_on_error=False)


def materialization(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.asset_materializations_for_node(result.all_node_events[0].node_name)
    assert event.tags["dagster/data_version"] == event.metadata["model_version"].value
    return {key: value.value for key, value in event.metadata.items()}


def record_quality(lake: Lake, source: str, day: str, failed_check: str | None) -> None:
    rows = [
        quality_store.result_row(
            source,
            day,
            "clean",
            check_name="amount_in_range",
            expectation="between",
            severity="ERROR",
            blocking=True,
            passed=True,
        ),
        quality_store.result_row(
            source,
            day,
            "clean",
            check_name="txn_id_format",
            expectation="regex",
            severity="WARN",
            blocking=False,
            passed=failed_check is None,
        ),
    ]
    quality_store.write_results(lake, source, day, "clean", rows)


def test_risk_model_registers_promotes_and_stays_idempotent(tmp_lake: Lake):
    shipped = model_by_name("transaction_risk", load_models())
    spec = shipped.model_copy(update={"training": shipped.training.model_copy(update={"lookback_partitions": 3})})
    asset = build_model_asset(spec)
    synthetic.write_governed(
        tmp_lake, "transactions", {day: synthetic.transactions(day, 300, seed=i) for i, day in enumerate(SIGNAL_DAYS)}
    )
    record_quality(tmp_lake, "transactions", SIGNAL_DAYS[0], failed_check="txn_id_format")
    registry = ModelRegistry(tmp_lake.path("models"), "transaction_risk")

    first = materialize(asset, tmp_lake)
    assert first.success
    meta = materialization(first)
    version = meta["model_version"]
    assert meta["promoted"] is True and meta["newly_registered"] is True
    assert meta["metric/roc_auc"] > 0.75 and meta["production"] == version
    assert registry.index()["aliases"] == {"candidate": version, "production": version}
    assert first.get_asset_check_evaluations()[0].check_name == THRESHOLD_CHECK
    assert first.get_asset_check_evaluations()[0].passed

    card = registry.read_card(version)
    assert card["training"]["partitions"] == SIGNAL_DAYS
    assert card["training"]["rows"] == 900
    assert card["training"]["quality"][SIGNAL_DAYS[0]] == {
        "recorded": True,
        "checks": 2,
        "passed": 1,
        "failed": ["clean:txn_id_format"],
        "blocking_failed": [],
    }
    assert card["training"]["quality"][SIGNAL_DAYS[1]] == {"recorded": False}
    assert card["metrics"]["roc_auc"] == meta["metric/roc_auc"]
    model = deserialize(registry.read_artifact(version))
    assert model.predict_proba(pd.DataFrame(card["sample_input"])).shape == (3, 2)

    # Same governed data, same version: nothing new is registered and production stays.
    again = materialize(asset, tmp_lake)
    assert again.success
    meta_again = materialization(again)
    assert meta_again["model_version"] == version and meta_again["newly_registered"] is False
    assert "already the production version" in meta_again["promotion_reason"]
    assert registry.versions() == [version]
    assert again.asset_materializations_for_node("models__transaction_risk")[0].tags["dagster/data_version"] == version

    # Newer partitions without a fraud signal: a new candidate that fails the rule, production stays.
    synthetic.write_governed(
        tmp_lake,
        "transactions",
        {day: synthetic.transactions(day, 300, seed=10 + i, signal=False) for i, day in enumerate(NOISE_DAYS)},
    )
    worse = materialize(asset, tmp_lake)
    assert worse.success  # a rejected candidate is a normal outcome, not a failed run
    meta_worse = materialization(worse)
    index = registry.index()
    assert meta_worse["promoted"] is False and meta_worse["model_version"] != version
    assert index["aliases"] == {"candidate": meta_worse["model_version"], "production": version}
    assert index["decisions"][-1]["reason"] == meta_worse["promotion_reason"]
    assert meta_worse["promotion_reason"].startswith(f"candidate {meta_worse['model_version']} ")
    assert (
        json.loads(json.dumps(meta_worse["champion_metrics"]))["basis"] == "re-scored on the candidate's held-out rows"
    )
    assert registry.read_card(meta_worse["model_version"])["training"]["partitions"] == NOISE_DAYS


def test_anomaly_model_materializes_with_label_metrics(tmp_lake: Lake):
    asset = build_model_asset(model_by_name("device_anomaly", load_models()))
    synthetic.write_governed(
        tmp_lake, "device_telemetry", {day: synthetic.telemetry(day, 300, seed=i) for i, day in enumerate(SIGNAL_DAYS)}
    )
    result = materialize(asset, tmp_lake)
    assert result.success
    meta = materialization(result)
    assert meta["promoted"] is True
    assert 0 < meta["metric/anomaly_rate"] <= 0.1 and meta["metric/recall"] >= 0.8
    card = ModelRegistry(tmp_lake.path("models"), "device_anomaly").read_card(meta["model_version"])
    assert card["score_method"] == "decision_function" and card["task"] == "anomaly"
    assert [f["name"] for f in card["feature_schema"]] == ["temperature", "humidity", "vibration", "battery"]


def test_missing_governed_data_fails_with_the_path(tmp_lake: Lake):
    result = materialize(build_model_asset(model_by_name("device_anomaly", load_models())), tmp_lake)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "no governed partitions at" in failure.description
    assert (
        "governed/device_telemetry" in failure.description
        and "materialize device_telemetry/governed" in failure.description
    )


def test_definitions_show_model_image_deployment_lineage():
    defs = bind_resources(models_defs)
    graph = defs.resolve_asset_graph()
    for name, source in (("device_anomaly", "device_telemetry"), ("transaction_risk", "transactions")):
        assert graph.get(dg.AssetKey(["models", name])).parent_keys == {dg.AssetKey([source, "governed"])}
        assert graph.get(dg.AssetKey(["models", name, "image"])).parent_keys == {dg.AssetKey(["models", name])}
        assert graph.get(dg.AssetKey(["models", name, "deployment"])).parent_keys == {
            dg.AssetKey(["models", name, "image"])
        }
    # delivery registers what builds and deploys them (models never import delivery)
    assert {a.key for a in delivery_defs.assets} == {dg.AssetKey(["delivery", "service_catalog"])}
    assert {job.name for job in bind_resources(delivery_defs).resolve_all_job_defs()} >= {
        "build_model_image",
        "deploy_model",
    }
    assert {s.name for s in delivery_defs.sensors} == {
        "model_version_sensor",
        "image_built_sensor",
        "service_catalog_sensor",
    }
    assert not defs.sensors and not {job.name for job in defs.resolve_all_job_defs()} & {
        "build_model_image",
        "deploy_model",
    }
