"""The build_model_image job end to end: artifact in the lake's model registry → image pushed,
smoke-tested through dagster-docker, materialized as ["models", <name>, "image"] — and a run that
fails at the smoke test (not earlier, not silently) when the model cannot load."""
from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from lepton_pipelines.delivery.images.jobs import build_model_image, build_model_image_run_config
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
    assert result.is_node_success("build_and_push_model_image")
    assert result.is_node_failed("smoke_test_model_image")
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
    error = result.failure_data_for_node("build_and_push_model_image").error.cause
    assert "describes pumps:v2, but the run asked for pumps:v1" in error.message
    card = json.loads(lake.path("models", "pumps", "v1", "model_card.json").read_text())
    assert card["version"] == "v2"
