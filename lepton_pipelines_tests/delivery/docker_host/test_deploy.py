"""docker_host target against the real Docker engine and the registry on 127.0.0.1:5000."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import docker
import pytest

from lepton_pipelines.delivery.docker_host import DockerHostTarget, InvalidDeployConfig
from lepton_pipelines.delivery.docker_host.slots import LABEL_MODEL_NAME
from lepton_pipelines.delivery.hardening import hardening_problems
from lepton_pipelines.delivery.targets import DEPLOY_TARGETS, DeployFailed, DeployRequest

pytestmark = pytest.mark.timeout(240)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SAMPLE_ROWS = [{"temperature": 21.5, "humidity": 40}]


def fetch_json(url: str, payload: Any = None) -> dict[str, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(request, timeout=5) as response:
        return json.loads(response.read())


def refuses_connections(url: str) -> bool:
    try:
        _NO_PROXY.open(url, timeout=2)
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


def deployed(client: docker.DockerClient, model_name: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_MODEL_NAME}={model_name}"})


def request_for(model_name: str, image: str, **config: Any) -> DeployRequest:
    return DeployRequest(
        model_name=model_name,
        model_version=image.rsplit(":", 1)[1],
        image=image,
        # The gateway has its own tests (test_gateway.py); here the replicas are addressed directly.
        config={
            "health_timeout_seconds": 30,
            "health_poll_interval_seconds": 0.2,
            "stop_timeout_seconds": 2,
            "gateway": {"enabled": False},
            **config,
        },
        sample_rows=SAMPLE_ROWS,
    )


def test_target_is_registered_under_docker_host():
    assert DEPLOY_TARGETS["docker_host"] is DockerHostTarget


def test_first_deploy_pulls_image_and_serves_every_replica(docker_client, test_images, model_name, base_port):
    image = test_images["good-v1"]
    docker_client.images.remove(image)  # only the registry has it now: the target must pull

    result = DockerHostTarget().deploy(
        request_for(model_name, image, replicas=2, base_port=base_port), log=lambda _: None
    )

    assert result.ok and result.serving_image == image and result.previous_image is None
    assert result.details["image_pulled"] is True
    endpoints = result.details["replica_endpoints"]
    assert endpoints == [f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{base_port + 1}"]
    for endpoint in endpoints:
        assert fetch_json(f"{endpoint}/health")["version"] == "good-v1"
        assert fetch_json(f"{endpoint}/predict", {"rows": SAMPLE_ROWS})["predictions"] == [0.0]
    containers = deployed(docker_client, model_name)
    assert len(containers) == 2
    for container in containers:
        assert container.labels["org.lepton.model.name"] == model_name
        assert container.labels["org.lepton.model.version"] == "good-v1"
        assert container.labels["org.lepton.deploy.slot"] == "blue"
        host_config = container.attrs["HostConfig"]
        assert host_config["NetworkMode"] == "host"
        assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
        # Exactly the hardening the image was smoke-tested under, and bound to loopback only.
        assert hardening_problems(container.attrs) == []
        assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert "HOST=127.0.0.1" in container.attrs["Config"]["Env"]
        assert "as uid 10001" in container.logs().decode()
        # Pinned: the tag was resolved in the registry and the container runs that digest.
        assert container.attrs["Config"]["Image"] == result.details["image_pinned"]
        assert result.details["image_pinned"].startswith(image.rsplit(":", 1)[0] + "@sha256:")
    ports_in_env = sorted(v for c in containers for v in c.attrs["Config"]["Env"] if v.startswith("PORT="))
    assert ports_in_env == [f"PORT={base_port}", f"PORT={base_port + 1}"]

    status = DockerHostTarget().status(model_name)
    assert status.serving_image == image and status.serving_version == "good-v1"
    assert [replica.healthy for replica in status.replicas] == [True, True]


def test_update_replaces_old_version_after_new_one_is_healthy(docker_client, test_images, model_name, base_port):
    target = DockerHostTarget()
    first = target.deploy(
        request_for(model_name, test_images["good-v1"], replicas=2, base_port=base_port), log=lambda _: None
    )

    second = target.deploy(
        request_for(model_name, test_images["good-v2"], replicas=2, base_port=base_port), log=lambda _: None
    )

    assert second.ok and second.serving_image == test_images["good-v2"]
    assert second.previous_image == test_images["good-v1"]
    assert second.details["slot"] == "green"
    assert second.details["replica_endpoints"] == [
        f"http://127.0.0.1:{base_port + 100}",
        f"http://127.0.0.1:{base_port + 101}",
    ]
    for endpoint in second.details["replica_endpoints"]:
        assert fetch_json(f"{endpoint}/predict", {"rows": SAMPLE_ROWS})["version"] == "good-v2"
    for endpoint in first.details["replica_endpoints"]:
        assert refuses_connections(f"{endpoint}/health")
    versions = sorted(c.labels["org.lepton.model.version"] for c in deployed(docker_client, model_name))
    assert versions == ["good-v2", "good-v2"]

    third = target.deploy(
        request_for(model_name, test_images["good-v1"], replicas=1, base_port=base_port), log=lambda _: None
    )
    assert third.details["slot"] == "blue"  # slots alternate, so old and new never share a port
    assert fetch_json(f"http://127.0.0.1:{base_port}/health")["version"] == "good-v1"
    assert len(deployed(docker_client, model_name)) == 1


def test_failed_readiness_rolls_back_and_keeps_old_version_serving(docker_client, test_images, model_name, base_port):
    target = DockerHostTarget()
    good = target.deploy(
        request_for(model_name, test_images["good-v2"], replicas=2, base_port=base_port), log=lambda _: None
    )

    with pytest.raises(DeployFailed) as failure:
        target.deploy(
            request_for(model_name, test_images["bad-v3"], replicas=2, base_port=base_port, health_timeout_seconds=3),
            log=lambda _: None,
        )

    result = failure.value.result
    message = str(failure.value)
    assert result.rolled_back and not result.ok
    assert result.serving_image == test_images["good-v2"]
    assert "GET /ready" in message and "HTTP 503" in message
    assert f"Still serving: {test_images['good-v2']}" in message
    assert "cannot load model weights" in message  # the failing container's last log lines
    assert result.details["failed_check"] == "GET /ready"
    for endpoint in good.details["replica_endpoints"]:
        assert fetch_json(f"{endpoint}/health")["version"] == "good-v2"
    versions = sorted(c.labels["org.lepton.model.version"] for c in deployed(docker_client, model_name))
    assert versions == ["good-v2", "good-v2"]
    for port in result.details["failed_ports"]:
        assert refuses_connections(f"http://127.0.0.1:{port}/health")


def test_container_that_exits_at_startup_fails_first_deploy_without_leftovers(
    docker_client, test_images, model_name, base_port
):
    with pytest.raises(DeployFailed) as failure:
        DockerHostTarget().deploy(
            request_for(model_name, test_images["bad-v4"], base_port=base_port), log=lambda _: None
        )

    message = str(failure.value)
    # Docker may already have restarted it (restart policy) by the time we look: both say it crashed.
    assert "GET /health" in message and (
        "exited with code 3" in message or "container crashed and is being restarted" in message
    )
    assert "Nothing is serving" in message and "model file is corrupt" in message
    assert failure.value.result.serving_image is None
    assert deployed(docker_client, model_name) == []


def test_busy_port_fails_before_any_container_starts(docker_client, test_images, model_name, base_port):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base_port))
        squatter.listen()
        with pytest.raises(DeployFailed, match=f"port\\(s\\) {base_port} on 127.0.0.1 already answer"):
            DockerHostTarget().deploy(
                request_for(model_name, test_images["good-v1"], base_port=base_port), log=lambda _: None
            )
    assert deployed(docker_client, model_name) == []


@pytest.mark.parametrize(
    ("image_tag", "config", "named_in_error"),
    [
        ("good-v1", {"replicas": 0}, "replicas"),
        ("good-v1", {"replicas": -1}, "replicas"),
        ("good-v1", {"replics": 2}, "replics: unknown field"),
        (None, {}, "has no tag"),
        ("latest", {}, "'latest' is not a version"),
        ("good-v1", {"pass_env": ["API_TOKEN=hunter2"]}, "pass_env takes variable names only"),
        ("good-v1", {"pass_env": ["LEPTON_TEST_SURELY_UNSET_VAR"]}, "LEPTON_TEST_SURELY_UNSET_VAR"),
    ],
)
def test_bad_config_fails_before_any_container_is_created(
    docker_client, test_images, model_name, base_port, image_tag, config, named_in_error
):
    repository = test_images["good-v1"].rsplit(":", 1)[0]
    image = repository if image_tag is None else f"{repository}:{image_tag}"
    request = DeployRequest(
        model_name=model_name, model_version="v", image=image, config={"base_port": base_port, **config}
    )

    with pytest.raises(InvalidDeployConfig) as failure:
        DockerHostTarget().deploy(request, log=lambda _: None)

    assert named_in_error in str(failure.value)
    assert "hunter2" not in str(failure.value)
    assert deployed(docker_client, model_name) == []


def test_pass_env_copies_secret_by_name_without_exposing_it(
    docker_client, test_images, model_name, base_port, monkeypatch
):
    monkeypatch.setenv("LEPTON_TEST_MODEL_TOKEN", "s3cr3t-value")
    lines: list[str] = []
    result = DockerHostTarget().deploy(
        request_for(model_name, test_images["good-v1"], base_port=base_port, pass_env=["LEPTON_TEST_MODEL_TOKEN"]),
        log=lines.append,
    )

    (container,) = deployed(docker_client, model_name)
    assert "LEPTON_TEST_MODEL_TOKEN=s3cr3t-value" in container.attrs["Config"]["Env"]
    assert "s3cr3t-value" not in json.dumps([result.message, result.details, lines])


def test_undeploy_removes_every_container(docker_client, test_images, model_name, base_port):
    target = DockerHostTarget()
    target.deploy(request_for(model_name, test_images["good-v1"], replicas=2, base_port=base_port), log=lambda _: None)

    removed = target.undeploy(model_name, log=lambda _: None)

    assert len(removed) == 2
    assert deployed(docker_client, model_name) == []
    assert target.status(model_name).serving_image is None
    assert refuses_connections(f"http://127.0.0.1:{base_port}/health")


def test_model_that_reports_failed_load_ends_the_rollout_at_once(docker_client, test_images, model_name, base_port):
    target = DockerHostTarget()
    target.deploy(request_for(model_name, test_images["good-v1"], base_port=base_port), log=lambda _: None)

    # A health timeout longer than this test's own timeout: only a terminal verdict can end it in time.
    with pytest.raises(DeployFailed) as failure:
        target.deploy(
            request_for(model_name, test_images["bad-v5"], base_port=base_port, health_timeout_seconds=3600),
            log=lambda _: None,
        )

    result = failure.value.result
    assert result.details["terminal"] is True and result.details["failed_check"] == "GET /ready"
    assert "model failed to load: model.joblib: invalid load key" in str(failure.value)
    assert "terminal: not waiting for the health timeout" in str(failure.value)
    assert result.rolled_back and result.serving_image == test_images["good-v1"]
    assert fetch_json(f"http://127.0.0.1:{base_port}/health")["version"] == "good-v1"


def test_crash_loop_is_terminal_too(docker_client, test_images, model_name, base_port):
    with pytest.raises(DeployFailed) as failure:
        DockerHostTarget().deploy(
            request_for(model_name, test_images["bad-v4"], base_port=base_port, health_timeout_seconds=3600),
            log=lambda _: None,
        )
    assert failure.value.result.details["terminal"] is True
    assert deployed(docker_client, model_name) == []


def test_image_pinned_by_digest_is_what_runs(docker_client, test_images, model_name, base_port):
    repository, tag = test_images["good-v2"].rsplit(":", 1)
    digest = next(
        d for d in docker_client.images.get(test_images["good-v2"]).attrs["RepoDigests"] if d.startswith(repository)
    )
    pinned = f"{repository}:{tag}@{digest.split('@', 1)[1]}"

    result = DockerHostTarget().deploy(
        DeployRequest(
            model_name=model_name,
            model_version="good-v2",
            image=pinned,
            config={"base_port": base_port, "gateway": {"enabled": False}},
            sample_rows=SAMPLE_ROWS,
        ),
        log=lambda _: None,
    )

    assert result.details["image_pinned"] == digest
    (container,) = deployed(docker_client, model_name)
    assert container.attrs["Config"]["Image"] == digest
    assert fetch_json(f"http://127.0.0.1:{base_port}/health")["version"] == "good-v2"
