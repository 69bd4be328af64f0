"""The deploy_model job: config resolution, clear failures before anything changes, and a
Kubernetes dry run end to end (render + schema validation, no cluster) recorded as the
deployment asset."""

import dagster as dg
import pytest
import yaml

from lepton_pipelines.delivery.jobs import deploy_model, deploy_model_run_config
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines_tests.models.helpers import register

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def registered(tmp_lake: Lake, monkeypatch) -> str:
    monkeypatch.setenv("LEPTON_IMAGE_REGISTRY", "127.0.0.1:5000")
    return register(tmp_lake, "device_anomaly", b"anomaly-1", 0.9)


def run_deploy(lake: Lake, model: str, version: str, **overrides) -> dg.ExecuteInProcessResult:
    return deploy_model.execute_in_process(
        run_config=deploy_model_run_config(model, version, **overrides),
        resources={"lake": LakeResource(url=lake.url)},
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    (failure,) = result.get_step_failure_events()
    return failure.step_failure_data.user_failure_data.description


def test_kubernetes_dry_run_records_the_rendered_manifests(tmp_lake: Lake, registered: str):
    result = run_deploy(
        tmp_lake,
        "device_anomaly",
        registered,
        target="kubernetes",
        target_options={"dry_run": True},
        deploy_config={"namespace": "models", "replicas": 2},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("deploy_model_version")
    assert materialization.asset_key == dg.AssetKey(["models", "device_anomaly", "deployment"])
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["target"] == "kubernetes" and metadata["dry_run"] is True
    assert metadata["image"] == f"127.0.0.1:5000/lepton/model-device_anomaly:{registered}"
    manifests = list(yaml.safe_load_all(metadata["manifests"].removeprefix("```yaml\n").removesuffix("\n```")))
    by_kind = {m["kind"]: m for m in manifests if m}
    assert {"Deployment", "Service", "Ingress"} <= set(by_kind)
    assert {m["metadata"]["namespace"] for m in by_kind.values()} == {"models"}
    containers = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == f"127.0.0.1:5000/lepton/model-device_anomaly:{registered}"
    # the same manifests are kept as a run artifact beside the model version
    artifact = tmp_lake.path("models", "device_anomaly", registered, "deployments", result.run_id, "manifests.yaml")
    assert metadata["manifests_path"] == str(artifact)
    assert list(yaml.safe_load_all(artifact.read_text())) == manifests


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"target": "swarm"}, "target 'swarm' is unknown; allowed: docker_host, kubernetes"),
        (
            {"target_options": {"dryrun": True}},
            "target_options dryrun are not options of target 'docker_host'; allowed: none",
        ),
        (
            {"deploy_config": {"replicas": 0}},
            "rejected by target docker_host before any change: docker_host deploy config for model 'device_anomaly' "
            "is invalid: replicas: Input should be greater than or equal to 1",
        ),
        ({"deploy_config": {"replica": 2}}, "replica: unknown field"),
        ({"target": "kubernetes", "target_options": {"dry_run": True}, "deploy_config": {"replicas": -1}}, "replicas"),
        ({"image": "127.0.0.1:5000/lepton/model-device_anomaly"}, "has no tag"),
    ],
)
def test_bad_deploy_config_fails_clearly_before_anything_changes(tmp_lake: Lake, registered: str, overrides, expected):
    message = failure_message(run_deploy(tmp_lake, "device_anomaly", registered, **overrides))
    assert message.startswith("deploy of ")
    assert expected in message


def test_unregistered_version_fails_with_the_registered_ones(tmp_lake: Lake, registered: str):
    message = failure_message(run_deploy(tmp_lake, "device_anomaly", "feedbeef0000"))
    assert "device_anomaly:feedbeef0000 not started" in message
    assert f"has no version 'feedbeef0000'; registered: {registered}" in message


def test_missing_image_registry_is_named(tmp_lake: Lake, registered: str, monkeypatch):
    monkeypatch.delenv("LEPTON_IMAGE_REGISTRY")
    message = failure_message(run_deploy(tmp_lake, "device_anomaly", registered))
    assert "no image registry: set LEPTON_IMAGE_REGISTRY" in message


def test_undeclared_model_needs_explicit_target_and_config(tmp_lake: Lake, registered: str):
    message = failure_message(run_deploy(tmp_lake, "churn", "abc"))
    assert "model 'churn' is not declared in models.yaml" in message


def test_failed_deploy_fails_the_run_and_records_what_serves(tmp_lake: Lake, registered: str):
    """Against the real Docker engine: an image the registry does not have cannot start, nothing
    was serving before, and the run fails with the target's message."""
    missing = f"127.0.0.1:5000/lepton/model-device_anomaly:{registered}-absent"
    result = run_deploy(
        tmp_lake,
        "device_anomaly",
        registered,
        image=missing,
        deploy_config={"replicas": 1, "base_port": 18480, "health_timeout_seconds": 5, "gateway": {"enabled": False}},
    )
    message = failure_message(result)
    assert message.startswith(f"deploy of {missing} failed: ")
    assert "manifest unknown" in message and "Nothing is serving model 'device_anomaly'" in message
    (recorded,) = result.asset_observations_for_node("deploy_model_version")
    assert recorded.asset_key == dg.AssetKey(["models", "device_anomaly", "deployment"])
    assert recorded.metadata["serving_image"].value == "nothing"
    assert not result.asset_materializations_for_node("deploy_model_version")
