"""Fixtures: a fake Kubernetes API server on 127.0.0.1 and a target wired to it over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lepton_pipelines.delivery.kubernetes import ApiRetry, KubernetesTarget
from lepton_pipelines.delivery.targets import DeployRequest

from .fake_api_server import FakeKubernetes

REPO_ROOT = Path(__file__).resolve().parents[3]
RBAC_YAML = REPO_ROOT / "deployments" / "kubernetes" / "deployer-rbac.yaml"
REGISTRY = "127.0.0.1:5000/lepton"
SAMPLE_ROWS = [{"tenure_months": 3, "monthly_spend": 42.5}, {"tenure_months": 30, "monthly_spend": 10.0}]


def image_for(version: str, model: str = "churn") -> str:
    return f"{REGISTRY}/model-{model}:{version}"


def make_request(version: str = "7", config: dict[str, Any] | None = None, **overrides: Any) -> DeployRequest:
    fields = dict(
        model_name="churn",
        model_version=version,
        image=image_for(version),
        run_id="run-0f1e2d",
        config=config if config is not None else {},
        sample_rows=SAMPLE_ROWS,
    )
    return DeployRequest(**{**fields, **overrides})


def deployer_role() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(RBAC_YAML.read_text()))
    return next(doc for doc in documents if doc["kind"] == "Role")


@pytest.fixture
def fake_k8s() -> Iterator[FakeKubernetes]:
    server = FakeKubernetes().start()
    yield server
    server.stop()


@pytest.fixture
def target_for(fake_k8s: FakeKubernetes) -> Callable[..., KubernetesTarget]:
    """A target talking to the fake over HTTP, polling and backing off in milliseconds."""

    def build(**overrides: Any) -> KubernetesTarget:
        settings: dict[str, Any] = dict(
            host=fake_k8s.url,
            poll_interval_seconds=0.01,
            smoke_test_timeout_seconds=5,
            retry=ApiRetry(attempts=4, initial_delay_seconds=0.01, max_delay_seconds=0.02),
            pin_digest=False,  # these images exist only in the fake cluster's story; test_pinning pushes real ones
        )
        return KubernetesTarget(**{**settings, **overrides})

    return build
