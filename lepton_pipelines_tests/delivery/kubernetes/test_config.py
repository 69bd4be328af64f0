"""Deploy configuration: defaults, and errors that name the field and what is allowed."""

from __future__ import annotations

import re

import pytest

from lepton_pipelines.delivery.kubernetes import DeployConfigError, parse_deploy_config
from lepton_pipelines.delivery.kubernetes.config import validate_request_identity

pytestmark = pytest.mark.timeout(30)


def test_defaults_are_production_shaped() -> None:
    config = parse_deploy_config(None)
    assert (config.namespace, config.replicas, config.hpa_min_replicas) == ("lepton-models", 3, 3)
    assert config.resources.requests.as_manifest() == {"cpu": "250m", "memory": "256Mi"}
    assert config.resources.limits.as_manifest() == {"cpu": "1", "memory": "512Mi"}
    assert config.network_policy.enabled and config.ingress.enabled and not config.canary.enabled


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"replicas": -1}, r"replicas: Input should be greater than or equal to 0 \(got -1\)"),
        ({"replica": 2}, r"replica: unknown field; allowed fields here: namespace, replicas, "),
        ({"ingress": {"hots": "x"}}, r"ingress\.hots: unknown field; allowed fields here: enabled, host, path"),
        (
            {"resources": {"limits": {"memory": "512MB"}}},
            r"resources\.limits\.memory: '512MB' is not a Kubernetes quantity",
        ),
        (
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}},
            r"requests\.cpu 2 exceeds limits\.cpu 500m",
        ),
        ({"hpa": {"min_replicas": 5, "max_replicas": 2}}, r"hpa\.min_replicas \(5\) exceeds hpa\.max_replicas \(2\)"),
        ({"replicas": 0}, r"replicas 0 needs hpa\.enabled: false"),
        ({"ingress": {"tls_secret": "tls"}}, r"ingress: tls_secret needs a host"),
        ({"ingress": {"path": "models/churn"}}, r"ingress\.path: 'models/churn' must start with '/'"),
        (
            {"rollout": {"max_surge": 0, "max_unavailable": 0}},
            r"rollout: max_surge and max_unavailable cannot both be 0",
        ),
        ({"rollout": {"max_surge": "lots"}}, r"rollout\.max_surge.*percentage like '25%'"),
        ({"namespace": "Models_Prod"}, r"namespace: 'Models_Prod' must be a DNS label"),
        (
            {"network_policy": {"allow_cidrs": ["10.0.0.0/33"]}},
            r"network_policy\.allow_cidrs: '10\.0\.0\.0/33' is not a CIDR",
        ),
    ],
)
def test_invalid_config_names_field_and_allowed_values(raw: dict, expected: str) -> None:
    with pytest.raises(
        DeployConfigError, match=r"Kubernetes deploy config for model 'churn' is invalid:\n(.|\n)*" + expected
    ):
        parse_deploy_config(raw, model_name="churn")


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(DeployConfigError) as caught:
        parse_deploy_config({"replicas": -2, "colour": "blue", "resources": {"limits": {"cpu": "fast"}}})
    message = str(caught.value)
    assert "replicas:" in message and "colour: unknown field" in message and "resources.limits.cpu:" in message


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/lepton/model-churn", "has no tag"),  # the registry port is not a tag
        ("127.0.0.1:5000/lepton/model-churn:latest", "'latest' is not pinned"),
        ("registry/lepton/model-churn:", "'(empty)' is not pinned"),
    ],
)
def test_image_must_be_pinned(image: str, expected: str) -> None:
    with pytest.raises(DeployConfigError, match=re.escape(expected)):
        validate_request_identity("churn", "7", image)


def test_pinned_images_and_valid_identities_pass() -> None:
    # validate_request_identity raises DeployConfigError on any problem and returns None when the
    # request is acceptable: both a tag-pinned and a digest-pinned image are accepted.
    assert (
        validate_request_identity("churn_v2", "2024.06.01-rc1", "127.0.0.1:5000/lepton/model-churn_v2:2024.06.01-rc1")
        is None
    )
    assert validate_request_identity("churn", "7", "registry/lepton/model-churn@sha256:" + "a" * 64) is None


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [("Churn", "7", "model name 'Churn'"), ("churn", "v 7", "model version 'v 7'"), ("churn", "", "model version ''")],
)
def test_names_and_versions_must_fit_kubernetes(name: str, version: str, expected: str) -> None:
    with pytest.raises(DeployConfigError, match=expected):
        validate_request_identity(name, version, "registry/lepton/model-churn:7")
