"""The Kubernetes target pins the image by digest from the real registry on 127.0.0.1:5000 before
applying anything, and refuses a version the registry does not hold (no ImagePullBackOff later)."""

from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest

from lepton_pipelines.delivery.images.registry import RegistryClient
from lepton_pipelines.delivery.kubernetes import DeployConfigError

from .conftest import make_request
from .fake_api_server import FakeKubernetes

pytestmark = pytest.mark.timeout(120)
REPOSITORY = "127.0.0.1:5000/lepton/model-churn"


@pytest.fixture(scope="module")
def pushed_version() -> str:
    """A tiny image pushed to the real registry as model-churn:<fresh version>."""
    client = docker.from_env()
    version = f"pin-{uuid.uuid4().hex[:8]}"
    dockerfile = f"FROM lepton/python-base:bookworm\nLABEL org.lepton.model.version={version}\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        archive.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=f"{REPOSITORY}:{version}", rm=True)
    errors = [c["error"] for c in client.api.push(REPOSITORY, tag=version, stream=True, decode=True) if "error" in c]
    assert not errors, errors
    yield version
    client.images.remove(f"{REPOSITORY}:{version}", force=True)


def test_deployment_runs_the_digest_the_registry_holds(fake_k8s: FakeKubernetes, target_for, pushed_version: str):
    digest = RegistryClient("127.0.0.1:5000").manifest("lepton/model-churn", pushed_version).digest

    result = target_for(pin_digest=True).deploy(
        make_request(pushed_version, {"hpa": {"enabled": False}}), log=lambda _: None
    )

    pinned = f"{REPOSITORY}:{pushed_version}@{digest}"
    assert result.details["image_pinned"] == pinned
    deployment = fake_k8s.deployment("lepton-models", "model-churn")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == pinned


def test_version_missing_from_the_registry_is_refused_before_any_apply(fake_k8s: FakeKubernetes, target_for):
    with pytest.raises(DeployConfigError, match="not in its registry"):
        target_for(pin_digest=True).deploy(make_request("never-built-7"), log=lambda _: None)
    assert fake_k8s.requests == []
    dry = target_for(pin_digest=True, dry_run=True).deploy(make_request("never-built-7"), log=lambda _: None)
    assert dry.ok and dry.details["image_pinned"] == "" and "not in its registry" in dry.details["pin"]
