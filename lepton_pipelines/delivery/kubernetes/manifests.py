"""Kubernetes manifests for one model service, as plain dicts.

Pure functions of (request, config): the same input renders the same YAML, which the deploy job
stores as a run artifact and the tests validate against the Kubernetes OpenAPI schemas. No cluster
access and no Dagster imports here.
"""

from __future__ import annotations

from typing import Any

import yaml

from lepton_pipelines.delivery.hardening import HARDENING
from lepton_pipelines.delivery.targets import DeployRequest

from .config import DeployConfig

CONTAINER_PORT = 8080
SERVICE_PORT = 80
FIELD_MANAGER = "lepton-deployer"
NAME_LABEL = "app.kubernetes.io/name"
TRACK_LABEL = "org.lepton.track"
RUN_ID_ANNOTATION = "org.lepton.dagster/run-id"
MODEL_NAME_LABEL = "org.lepton.model.name"
MODEL_VERSION_LABEL = "org.lepton.model.version"
STABLE = "stable"
CANARY = "canary"


def resource_name(model_name: str) -> str:
    """Kubernetes names allow no '_', model names do: ``churn_v2`` → ``model-churn-v2``."""
    return "model-" + model_name.replace("_", "-")


def canary_name(model_name: str) -> str:
    return resource_name(model_name) + "-canary"


def ingress_path(request: DeployRequest, config: DeployConfig) -> str:
    return config.ingress.path or f"/models/{request.model_name}"


def _labels(request: DeployRequest) -> dict[str, str]:
    return {
        NAME_LABEL: resource_name(request.model_name),
        "app.kubernetes.io/version": request.model_version,
        "app.kubernetes.io/component": "model-service",
        "app.kubernetes.io/part-of": "lepton",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        MODEL_NAME_LABEL: request.model_name,
        MODEL_VERSION_LABEL: request.model_version,
    }


def _metadata(name: str, request: DeployRequest, config: DeployConfig, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": config.namespace, "labels": _labels(request), **extra}


def _run_annotations(request: DeployRequest) -> dict[str, str]:
    return {RUN_ID_ANNOTATION: request.run_id} if request.run_id else {}


def service_selector(request: DeployRequest) -> dict[str, str]:
    """The Service, HPA-free selectors and NetworkPolicy match both tracks (stable and canary)."""
    return {NAME_LABEL: resource_name(request.model_name)}


def _restricted_security_context() -> dict[str, Any]:
    # The same hardening the smoke test and the Docker-host target use (delivery.hardening);
    # it satisfies the "restricted" Pod Security Standard, so the namespace can enforce it.
    return HARDENING.kubernetes_container_security_context()


def deployment_manifest(request: DeployRequest, config: DeployConfig, *, track: str = STABLE) -> dict[str, Any]:
    """The model-service Deployment. ``track`` = ``canary`` renders the small canary Deployment."""
    is_canary = track == CANARY
    name = canary_name(request.model_name) if is_canary else resource_name(request.model_name)
    selector = {**service_selector(request), TRACK_LABEL: track}
    pod_labels = {**_labels(request), TRACK_LABEL: track}
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": config.rollout.progress_deadline_seconds,
        "selector": {"matchLabels": selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": config.rollout.max_surge,
                "maxUnavailable": config.rollout.max_unavailable,
            },
        },
        "template": {
            "metadata": {"labels": pod_labels, "annotations": _run_annotations(request)},
            "spec": _pod_spec(request, config),
        },
    }
    # With an HPA the autoscaler owns spec.replicas; applying it would reset a scaled-out service.
    if is_canary:
        spec["replicas"] = config.canary.replicas
    elif not config.hpa.enabled:
        spec["replicas"] = config.replicas
    annotations = {
        **_run_annotations(request),
        "kubernetes.io/change-cause": f"lepton deploy {request.model_name} {request.model_version}"
        + (f" (run {request.run_id})" if request.run_id else ""),
    }
    metadata = _metadata(name, request, config, annotations=annotations)
    metadata["labels"] = {**metadata["labels"], TRACK_LABEL: track}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _pod_spec(request: DeployRequest, config: DeployConfig) -> dict[str, Any]:
    tmp_volume, tmp_mount = HARDENING.kubernetes_tmp_volume()
    container = {
        "name": "model",
        "image": request.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {
            key: value
            for key, value in {
                "requests": config.resources.requests.as_manifest(),
                "limits": config.resources.limits.as_manifest(),
            }.items()
            if value
        },
        "securityContext": _restricted_security_context(),
        # The root filesystem is read-only; Python and the server still need a scratch /tmp.
        "volumeMounts": [tmp_mount],
    }
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the model service never calls the Kubernetes API
        "securityContext": HARDENING.kubernetes_pod_security_context(),
        "containers": [container],
        "volumes": [tmp_volume],
    }
    if config.service_account_name:
        pod["serviceAccountName"] = config.service_account_name
    if config.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": secret} for secret in config.image_pull_secrets]
    return pod


def service_manifest(request: DeployRequest, config: DeployConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(resource_name(request.model_name), request, config),
        "spec": {
            "type": "ClusterIP",
            "selector": service_selector(request),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def hpa_manifest(request: DeployRequest, config: DeployConfig) -> dict[str, Any]:
    name = resource_name(request.model_name)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, request, config),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": config.hpa_min_replicas,
            "maxReplicas": config.hpa.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": config.hpa.cpu_target_percent},
                    },
                }
            ],
        },
    }


def tls_secret_name(request: DeployRequest, config: DeployConfig) -> str | None:
    if config.ingress.allow_plaintext and not config.ingress.tls_secret:
        return None
    return config.ingress.tls_secret or f"{resource_name(request.model_name)}-tls"


def basic_auth_secret_name(request: DeployRequest, config: DeployConfig) -> str:
    return config.ingress.basic_auth_secret or f"{resource_name(request.model_name)}-basic-auth"


def ingress_manifest(request: DeployRequest, config: DeployConfig) -> dict[str, Any]:
    """Routes only ``<prefix>/predict`` — ``/metrics``, ``/ready`` and everything else stay inside the
    cluster — over TLS (HTTP is redirected) and behind basic or external auth."""
    settings = config.ingress
    prefix = ingress_path(request, config).rstrip("/")
    annotations: dict[str, str] = {}
    if settings.strip_path_prefix:
        # ingress-nginx: /models/churn/predict reaches the pod as /predict; nothing else matches.
        path, path_type = f"{prefix}/(predict)$", "ImplementationSpecific"
        annotations["nginx.ingress.kubernetes.io/use-regex"] = "true"
        annotations["nginx.ingress.kubernetes.io/rewrite-target"] = "/$1"
    else:
        path, path_type = f"{prefix}/predict", "Exact"
    tls_secret = tls_secret_name(request, config)
    if tls_secret:
        annotations["nginx.ingress.kubernetes.io/ssl-redirect"] = "true"
        annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] = "true"
    if settings.auth == "basic":
        annotations["nginx.ingress.kubernetes.io/auth-type"] = "basic"
        annotations["nginx.ingress.kubernetes.io/auth-secret"] = basic_auth_secret_name(request, config)
        annotations["nginx.ingress.kubernetes.io/auth-realm"] = settings.basic_auth_realm
    if settings.auth_url:
        annotations["nginx.ingress.kubernetes.io/auth-url"] = settings.auth_url
    if settings.auth_signin:
        annotations["nginx.ingress.kubernetes.io/auth-signin"] = settings.auth_signin
    if settings.auth_response_headers:
        annotations["nginx.ingress.kubernetes.io/auth-response-headers"] = ",".join(settings.auth_response_headers)
    annotations.update(settings.annotations)

    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": path_type,
                    "backend": {
                        "service": {"name": resource_name(request.model_name), "port": {"number": SERVICE_PORT}}
                    },
                }
            ]
        }
    }
    if settings.host:
        rule["host"] = settings.host
    spec: dict[str, Any] = {"rules": [rule]}
    if settings.ingress_class:
        spec["ingressClassName"] = settings.ingress_class
    if tls_secret:
        spec["tls"] = [
            {"hosts": [settings.host], "secretName": tls_secret} if settings.host else {"secretName": tls_secret}
        ]
    metadata = _metadata(resource_name(request.model_name), request, config)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def network_policy_manifest(request: DeployRequest, config: DeployConfig) -> dict[str, Any]:
    """Only the gateway (and explicitly listed CIDRs) may reach port 8080; everything else is denied."""
    gateway = config.network_policy.gateway
    peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": {"matchLabels": gateway.namespace_labels},
            "podSelector": {"matchLabels": gateway.pod_labels},
        }
    ]
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in config.network_policy.allow_cidrs]
    rules = [{"from": peers, "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}]
    scrapers = config.network_policy.metrics_scrapers
    if scrapers is not None:  # Prometheus scrapes /metrics on the pods, inside the cluster
        rules.append(
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": scrapers.namespace_labels},
                        "podSelector": {"matchLabels": scrapers.pod_labels},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(resource_name(request.model_name), request, config),
        "spec": {
            "podSelector": {"matchLabels": service_selector(request)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def render_manifests(request: DeployRequest, config: DeployConfig) -> list[dict[str, Any]]:
    """Everything one model service needs, in apply order: the traffic fence first, the Ingress last,
    so a route never points at pods before a policy and a Service exist for them."""
    manifests: list[dict[str, Any]] = []
    if config.network_policy.enabled:
        manifests.append(network_policy_manifest(request, config))
    manifests.append(service_manifest(request, config))
    if config.canary.enabled:
        manifests.append(deployment_manifest(request, config, track=CANARY))
    manifests.append(deployment_manifest(request, config))
    if config.hpa.enabled:
        manifests.append(hpa_manifest(request, config))
    if config.ingress.enabled:
        manifests.append(ingress_manifest(request, config))
    return manifests


def manifests_to_yaml(manifests: list[dict[str, Any]]) -> str:
    """One multi-document YAML, ready for ``kubectl apply -f`` or a run artifact."""
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)
