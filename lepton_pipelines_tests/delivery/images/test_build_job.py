"""The build_model_image job end to end: artifact in the lake's model registry → local image,
smoke-tested through dagster-docker, pushed only then, materialized as ["models", <name>, "image"] —
a run that fails at the smoke test (not earlier, not silently, nothing pushed) when the model cannot
load, and a version tag that is written once: a rebuild of the same image is a no-op, a different
image under an existing version tag is refused. All against the real registry on 127.0.0.1:5000."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from lepton_pipelines.delivery.images.jobs import build_model_image, build_model_image_run_config
from lepton_pipelines.delivery.images.registry import RegistryClient
from lepton_pipelines.delivery.images.resource import image_builder_from_env
from lepton_pipelines.delivery.images.smoke import SMOKE_RUN_LABEL
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake

from .conftest import REGISTRY, library_versions, unique_version, write_model_artifact

pytestmark = pytest.mark.timeout(900)


def _register(lake: Lake, local_artifact: Path, name: str, version: str) -> None:
    for file in local_artifact.iterdir():
        target = lake.path("models", name, version, file.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())


def _run(lake: Lake, name: str, version: str):
    return build_model_image.execute_in_process(
        run_config=build_model_image_run_config(name, version),
        resources={"image_builder": image_builder_from_env(), "lake": LakeResource(url=lake.url, s3_endpoint_url=None)},
        raise_on_error=False,
    )


def _no_smoke_containers_left(client: docker.DockerClient) -> bool:
    return not client.containers.list(all=True, filters={"label": SMOKE_RUN_LABEL})


def test_job_builds_pushes_smoke_tests_and_materializes_from_an_s3_lake(docker_client, s3_lake, tmp_path):
    name, version = "churn_classifier", unique_version()
    write_model_artifact(tmp_path / "artifact", name, version, task="classification")
    _register(s3_lake, tmp_path / "artifact", name, version)

    result = _run(s3_lake, name, version)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    steps = [e.step_key for e in result.get_step_success_events()]
    assert steps.index("smoke_test_model_image") < steps.index("push_model_image")
    materializations = result.asset_materializations_for_node("record_model_image")
    assert [m.asset_key.path for m in materializations] == [["models", name, "image"]]
    metadata = {key: value.value for key, value in materializations[0].metadata.items()}
    assert metadata["tag"] == f"{REGISTRY}/lepton/model-{name}:{version}"
    assert metadata["digest"].startswith(f"{REGISTRY}/lepton/model-{name}@sha256:")
    assert metadata["size_bytes"] > 50_000_000
    assert metadata["base_image"] == "lepton/python-base:bookworm"
    assert metadata["library_versions"] == library_versions()
    assert {check["check"] for check in metadata["smoke_checks"]} >= {"health", "ready", "predict", "metrics"}
    image = docker_client.images.get(metadata["tag"])
    assert metadata["digest"] in image.attrs["RepoDigests"]
    assert _no_smoke_containers_left(docker_client)
    docker_client.images.remove(metadata["tag"], force=True)


def test_job_fails_at_the_smoke_test_when_the_model_cannot_load(docker_client, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    name, version = "broken_model", unique_version()
    write_model_artifact(tmp_path / "artifact", name, version, task="anomaly")
    (tmp_path / "artifact" / "model.joblib").write_bytes(b"not a pickle at all")
    _register(lake, tmp_path / "artifact", name, version)

    result = _run(lake, name, version)

    assert not result.success
    assert result.is_node_success("build_model_image_locally")
    assert result.is_node_failed("smoke_test_model_image")
    assert not result.is_node_success("push_model_image")
    # The image that failed never reached the registry under the version tag.
    assert RegistryClient(REGISTRY).manifest(f"lepton/model-{name}", version) is None
    failure = result.failure_data_for_node("smoke_test_model_image").error.cause  # unwrap Dagster's step error
    assert "SmokeTestFailed" in failure.cls_name
    assert "model failed to load" in failure.message and "model.joblib" in failure.message
    assert result.asset_materializations_for_node("record_model_image") == []
    assert _no_smoke_containers_left(docker_client)
    docker_client.images.remove(f"{REGISTRY}/lepton/model-{name}:{version}", force=True)


def test_job_refuses_a_misfiled_registry_entry(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_model_artifact(tmp_path / "artifact", "pumps", "v2")
    _register(lake, tmp_path / "artifact", "pumps", "v1")  # card says v2, registry path says v1

    result = _run(lake, "pumps", "v1")

    assert not result.success
    error = result.failure_data_for_node("build_model_image_locally").error.cause
    assert "describes pumps:v2, but the run asked for pumps:v1" in error.message
    card = json.loads(lake.path("models", "pumps", "v1", "model_card.json").read_text())
    assert card["version"] == "v2"


def test_version_tag_is_written_once_same_image_is_a_no_op_and_a_different_one_is_refused(docker_client, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    name, version = "immutable_model", unique_version()
    artifact = tmp_path / "artifact"
    write_model_artifact(artifact, name, version, task="anomaly")
    card = json.loads((artifact / "model_card.json").read_text())
    card["created_at"] = "2026-01-02T03:04:05+00:00"  # what the model registry stamps on a version
    (artifact / "model_card.json").write_text(json.dumps(card))
    _register(lake, artifact, name, version)

    first = _run(lake, name, version)
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    pushed = {k: v.value for k, v in first.asset_materializations_for_node("record_model_image")[0].metadata.items()}
    assert pushed["already_in_registry"] is False
    remote = RegistryClient(REGISTRY).manifest(f"lepton/model-{name}", version)
    assert pushed["digest"] == f"{REGISTRY}/lepton/model-{name}@{remote.digest}"
    assert remote.config_digest == pushed["image_id"]

    # Rebuilding the unchanged version reproduces the same image: nothing is written, same digest.
    again = _run(lake, name, version)
    assert again.success, [e.message for e in again.all_events if e.is_failure]
    repeated = {k: v.value for k, v in again.asset_materializations_for_node("record_model_image")[0].metadata.items()}
    assert repeated["already_in_registry"] is True and repeated["digest"] == pushed["digest"]

    # Different bytes under the same version (a retrained model.joblib): smoke test passes, push refused.
    write_model_artifact(tmp_path / "retrained", name, version, task="classification")
    lake.path("models", name, version, "model.joblib").write_bytes(
        (tmp_path / "retrained" / "model.joblib").read_bytes()
    )
    card["task"], card["score_method"] = "classification", "predict_proba"
    lake.path("models", name, version, "model_card.json").write_text(json.dumps(card))
    conflicting = _run(lake, name, version)

    assert not conflicting.success
    assert conflicting.is_node_success("smoke_test_model_image")
    error = conflicting.failure_data_for_node("push_model_image").error.cause
    assert "ImageVersionExists" in error.cls_name
    assert "already exists in the registry" in error.message and "immutable" in error.message
    assert RegistryClient(REGISTRY).manifest(f"lepton/model-{name}", version).digest == remote.digest  # untouched
    docker_client.images.remove(f"{REGISTRY}/lepton/model-{name}:{version}", force=True)
