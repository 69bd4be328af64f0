"""Rendered manifests and the RBAC YAML are valid Kubernetes objects and say what we promise."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from lepton_pipelines.delivery.kubernetes import (
    DeployConfigError,
    manifests_to_yaml,
    parse_deploy_config,
    render_manifests,
    validate_manifests,
)
from lepton_pipelines.delivery.kubernetes.validation import known_kubernetes_versions, newest_kubernetes_version

from .conftest import RBAC_YAML, make_request

pytestmark = pytest.mark.timeout(60)

FULL_CONFIG: dict[str, Any] = {
    "namespace": "models-prod",
    "replicas": 4,
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    "hpa": {"min_replicas": 2, "max_replicas": 12, "cpu_target_percent": 65},
    "ingress": {
        "host": "models.example.com",
        "tls_secret": "models-example-tls",
        "ingress_class": "nginx",
        "auth_url": "https://auth.example.com/oauth2/auth",
        "auth_signin": "https://auth.example.com/oauth2/start",
        "auth_response_headers": ["X-Auth-Request-User"],
    },
    "network_policy": {
        "gateway": {"namespace_labels": {"team": "edge"}, "pod_labels": {"app": "gateway"}},
        "allow_cidrs": ["10.0.0.0/24"],
    },
    "rollout": {"timeout_seconds": 900, "progress_deadline_seconds": 240, "max_surge": 1, "max_unavailable": "10%"},
    "canary": {"enabled": True, "replicas": 1},
    "service_account_name": "churn-model",
    "image_pull_secrets": ["registry-creds"],
}

VERSIONS = ["1.29", newest_kubernetes_version()]


def _by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {(m["kind"] + ("/canary" if m["metadata"]["name"].endswith("-canary") else "")): m for m in manifests}


def test_newest_version_comes_from_the_installed_schemas() -> None:
    versions = known_kubernetes_versions()
    assert "1.29.0" in versions and versions == sorted(set(versions), key=lambda v: tuple(map(int, v.split("."))))
    assert newest_kubernetes_version() == versions[-1]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("config", [{}, FULL_CONFIG], ids=["default-config", "full-config"])
def test_every_rendered_manifest_validates_strictly(version: str, config: dict[str, Any]) -> None:
    manifests = render_manifests(make_request(config=config), parse_deploy_config(config))
    for manifest in manifests:
        # Strict: an unknown or misspelt field fails, not just a wrong type.
        assert kubernetes_validate.validate(manifest, version, strict=True).startswith(version.rsplit(".", 1)[0])
    kinds = sorted(m["kind"] for m in manifests)
    expected = ["Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "Service"]
    assert kinds == sorted(expected + (["Deployment"] if config else []))


@pytest.mark.parametrize("version", VERSIONS)
def test_rbac_yaml_validates_and_grants_only_namespaced_rights(version: str) -> None:
    documents = [doc for doc in yaml.safe_load_all(RBAC_YAML.read_text()) if doc]
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)
    kinds = {doc["kind"] for doc in documents}
    assert kinds == {"Namespace", "ServiceAccount", "Role", "RoleBinding"}  # no ClusterRole(Binding)
    role = next(doc for doc in documents if doc["kind"] == "Role")
    binding = next(doc for doc in documents if doc["kind"] == "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "lepton-models"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lepton-deployer"}
    assert binding["subjects"][0]["name"] == "lepton-deployer"
    granted = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in granted and not {"watch", "escalate", "bind", "impersonate"} & granted
    # "list" only for pods (to see a terminal state of the new version's pods) and for the service catalog's
    # discovery (Services, EndpointSlices), nothing else.
    listed = sorted(resource for rule in role["rules"] if "list" in rule["verbs"] for resource in rule["resources"])
    assert listed == ["endpointslices", "pods", "services"]
    assert all("*" not in rule["resources"] and "secrets" not in rule["resources"] for rule in role["rules"])


def test_deployment_is_hardened_probed_and_labelled() -> None:
    request = make_request(version="7", config=FULL_CONFIG)
    deployment = _by_kind(render_manifests(request, parse_deploy_config(FULL_CONFIG)))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "127.0.0.1:5000/lepton/model-churn:7"
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert pod["serviceAccountName"] == "churn-model" and pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert pod["automountServiceAccountToken"] is False
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}}
    assert spec["progressDeadlineSeconds"] == 240
    assert "replicas" not in spec  # the HPA owns it
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "model-churn"
    assert labels["app.kubernetes.io/version"] == labels["org.lepton.model.version"] == "7"
    assert labels["org.lepton.model.name"] == "churn"
    assert deployment["metadata"]["annotations"]["org.lepton.dagster/run-id"] == "run-0f1e2d"
    assert spec["template"]["metadata"]["annotations"]["org.lepton.dagster/run-id"] == "run-0f1e2d"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_without_hpa_the_deployment_carries_the_replica_count() -> None:
    config = {"replicas": 0, "hpa": {"enabled": False}}
    kinds = _by_kind(render_manifests(make_request(config=config), parse_deploy_config(config)))
    assert kinds["Deployment"]["spec"]["replicas"] == 0 and "HorizontalPodAutoscaler" not in kinds
    assert parse_deploy_config({}).replicas == 3


def test_service_hpa_ingress_and_network_policy_route_to_the_model() -> None:
    kinds = _by_kind(render_manifests(make_request(config=FULL_CONFIG), parse_deploy_config(FULL_CONFIG)))
    service, hpa, ingress, policy = (
        kinds[k] for k in ("Service", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy")
    )
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    # The Service selects both tracks, so canary pods receive a share of traffic.
    for deployment in (kinds["Deployment"], kinds["Deployment/canary"]):
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert kinds["Deployment/canary"]["spec"]["replicas"] == 1
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "model-churn"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 12)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 65}
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "models.example.com"
    assert rule["http"]["paths"][0]["path"] == "/models/churn/(predict)$"  # /metrics is never routed
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "model-churn", "port": {"number": 80}}
    assert ingress["spec"]["tls"] == [{"hosts": ["models.example.com"], "secretName": "models-example-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-url"] == "https://auth.example.com/oauth2/auth"
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/$1"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert "nginx.ingress.kubernetes.io/auth-type" not in annotations  # external auth replaces basic auth
    rule_in = policy["spec"]["ingress"][0]
    assert rule_in["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert rule_in["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "edge"}}, "podSelector": {"matchLabels": {"app": "gateway"}}},
        {"ipBlock": {"cidr": "10.0.0.0/24"}},
    ]
    scrape = policy["spec"]["ingress"][1]  # Prometheus reaches /metrics on the pods, inside the cluster
    assert scrape["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_prefix_path_without_rewrite_and_default_path() -> None:
    config = {"ingress": {"strip_path_prefix": False, "ingress_class": None, "allow_plaintext": True, "auth": "none"}}
    ingress = _by_kind(render_manifests(make_request(config=config), parse_deploy_config(config)))["Ingress"]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert (path["path"], path["pathType"]) == ("/models/churn/predict", "Exact")
    assert "ingressClassName" not in ingress["spec"] and "annotations" not in ingress["metadata"]
    assert "tls" not in ingress["spec"]  # only because allow_plaintext and auth: none were said out loud


@pytest.mark.parametrize("version", ["1.29", None])
def test_default_ingress_is_tls_and_basic_auth_and_routes_only_predict(version: str | None) -> None:
    manifests = render_manifests(make_request(), parse_deploy_config({}))
    validate_manifests(manifests, version)
    ingress = _by_kind(manifests)["Ingress"]
    assert ingress["spec"]["tls"] == [{"secretName": "model-churn-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert annotations["nginx.ingress.kubernetes.io/auth-secret"] == "model-churn-basic-auth"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/models/churn/(predict)$"]
    assert not any("metrics" in p for p in paths)


def test_kubernetes_and_docker_host_share_one_hardening() -> None:
    from lepton_pipelines.delivery.hardening import HARDENING

    deployment = _by_kind(render_manifests(make_request(), parse_deploy_config({})))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    context = pod["containers"][0]["securityContext"]
    docker = HARDENING.docker_run_kwargs()
    assert context == HARDENING.kubernetes_container_security_context()
    assert docker["user"] == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert docker["read_only"] is context["readOnlyRootFilesystem"] is True
    assert docker["cap_drop"] == context["capabilities"]["drop"] == ["ALL"]
    assert "no-new-privileges" in docker["security_opt"] and context["allowPrivilegeEscalation"] is False


def test_yaml_dump_round_trips_in_apply_order() -> None:
    manifests = render_manifests(make_request(), parse_deploy_config({}))
    text = manifests_to_yaml(manifests)
    assert list(yaml.safe_load_all(text)) == manifests
    assert [m["kind"] for m in manifests] == [
        "NetworkPolicy",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
    ]


def test_validation_names_kind_and_field_of_an_invalid_manifest() -> None:
    manifests = render_manifests(make_request(), parse_deploy_config({}))
    manifests[2]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(DeployConfigError, match=r"Deployment/model-churn .*containers\.0\.ports\.0\.containerPort"):
        validate_manifests(manifests, "1.29")
    with pytest.raises(DeployConfigError, match="known: 1.25.0"):
        validate_manifests(manifests, "9.99")
