"""A real model-service image: built once per module with the debootstrapped base image, pushed to
the registry on 127.0.0.1:5000, then pulled back, inspected and run on the host network."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from lepton_pipelines.delivery.images.builder import BuiltImage
from lepton_pipelines.delivery.images.resource import image_builder_from_env

from .conftest import (
    REGISTRY,
    RunningService,
    library_versions,
    remove_quietly,
    run_service,
    training_frame,
    unique_version,
    write_model_artifact,
)

pytestmark = pytest.mark.timeout(900)

MODEL_NAME = "pump_anomaly"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, object, str]:
    version = unique_version()
    directory = tmp_path_factory.mktemp("artifact") / MODEL_NAME / version
    model = write_model_artifact(directory, MODEL_NAME, version, task="anomaly")
    return directory, model, version


@pytest.fixture(scope="module")
def built(docker_client, trained) -> Iterator[BuiltImage]:
    directory, _model, _version = trained
    image = image_builder_from_env().process_config_and_initialize().get_builder().build(directory)
    yield image
    docker_client.images.remove(image.reference, force=True)


@pytest.fixture(scope="module")
def service(docker_client, built) -> Iterator[RunningService]:
    running = run_service(docker_client, built.reference)
    try:
        running.wait_ready()
        yield running
    finally:
        remove_quietly(running.container)


def test_image_is_named_and_labelled_per_contract(docker_client, built, trained):
    _directory, _model, version = trained
    assert built.reference == f"{REGISTRY}/lepton/model-{MODEL_NAME}:{version}"
    labels = docker_client.images.get(built.reference).labels
    assert labels["org.lepton.model.version"] == version
    assert labels["org.lepton.model.name"] == MODEL_NAME
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.base.name"] == built.base_image
    assert json.loads(labels["org.lepton.model.library-versions"]) == library_versions()
    assert built.size_bytes > 0


def test_push_then_pull_back_gives_the_same_digest(docker_client, built):
    repository, tag = built.reference.rsplit(":", 1)
    docker_client.images.remove(built.reference)  # only the tag; layers stay for the other tests
    pulled = docker_client.images.pull(repository, tag=tag)
    assert built.digest in pulled.attrs["RepoDigests"]
    tags = requests.get(f"http://{REGISTRY}/v2/lepton/model-{MODEL_NAME}/tags/list", timeout=10).json()["tags"]
    assert tag in tags


def _in_image(docker_client, image: str, *command: str) -> str:
    output = docker_client.containers.run(
        image, entrypoint=list(command), remove=True, network_mode="none", read_only=True
    )
    return output.decode()


def test_image_installs_exactly_the_card_library_versions(docker_client, built):
    frozen = dict(line.split("==") for line in _in_image(docker_client, built.reference, "pip", "freeze").split())
    for library, version in library_versions().items():
        assert frozen[library] == version, f"{library}: image has {frozen.get(library)}, card says {version}"
    assert sorted(f"{name}=={version}" for name, version in frozen.items()) == built.lock


def test_image_runs_as_non_root(docker_client, built):
    assert _in_image(docker_client, built.reference, "id", "-u").strip() == "10001"


def test_service_answers_health_ready_and_predicts_the_models_own_scores(service, trained):
    _directory, model, version = trained
    assert requests.get(service.url + "/health", timeout=5).json() == {"status": "alive"}
    ready = requests.get(service.url + "/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["version"] == version
    assert service.container.attrs["HostConfig"]["ReadonlyRootfs"] is True

    frame = training_frame(rows=25, seed=99)
    rows = json.loads(frame.to_json(orient="records"))
    response = requests.post(service.url + "/predict", json={"rows": rows}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    expected_frame = pd.DataFrame.from_records(rows)
    np.testing.assert_allclose(body["scores"], model.score_samples(expected_frame), rtol=1e-9)
    assert body["is_anomaly"] == [bool(p == -1) for p in model.predict(expected_frame)]
    assert (body["model"], body["version"]) == (MODEL_NAME, version)


def test_metrics_count_requests_and_expose_model_version(service, trained):
    _directory, _model, version = trained
    row = json.loads(training_frame(rows=1).to_json(orient="records"))
    for _ in range(3):
        assert requests.post(service.url + "/predict", json={"rows": row}, timeout=10).status_code == 200
    metrics = requests.get(service.url + "/metrics", timeout=5).text
    ok_count = [
        line
        for line in metrics.splitlines()
        if line.startswith('lepton_model_requests_total{endpoint="/predict",method="POST",status="200"}')
    ]
    assert ok_count and float(ok_count[0].split()[-1]) >= 3
    assert f'lepton_model_info{{name="{MODEL_NAME}",version="{version}"' in metrics
    assert 'lepton_model_request_duration_seconds_count{endpoint="/predict"}' in metrics


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"rows": [{"temperature": 1.0, "pulses": 2, "site": "north"}]}, 422, "row 0, field 'active': is missing"),
        (
            {"rows": [{"temperature": "hot", "pulses": 2, "site": "n", "active": True}]},
            422,
            "row 0, field 'temperature': expected float, got string",
        ),
        (
            {"rows": [{"temperature": 1.0, "pulses": True, "site": "n", "active": True}]},
            422,
            "field 'pulses': expected integer, got boolean",
        ),
        (
            {"rows": [{"temperature": 1.0, "pulses": 2, "site": "n", "active": True, "tmp": 1}]},
            422,
            "field 'tmp': is not a model feature",
        ),
        ({"rows": []}, 400, "field 'rows': is empty"),
        ({"records": []}, 400, "field 'rows'"),
    ],
)
def test_predict_rejects_bad_rows_naming_row_and_field(service, body, status, needle):
    response = requests.post(service.url + "/predict", json=body, timeout=10)
    assert response.status_code == status
    assert needle in response.json()["error"]


def test_predict_rejects_non_json_and_oversized_bodies(service):
    not_json = requests.post(service.url + "/predict", data=b"temperature=1", timeout=10)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    # Announce a 9 MiB body but send none: the service must refuse on the header, not read it.
    connection = http.client.HTTPConnection(service.url.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(9 * 1024 * 1024))
    connection.endheaders()
    oversized = connection.getresponse()
    assert oversized.status == 413 and "LEPTON_MAX_BODY_BYTES" in json.loads(oversized.read())["error"]
    connection.close()
    assert requests.get(service.url + "/health", timeout=5).status_code == 200
