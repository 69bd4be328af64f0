"""Kubernetes deploy target: Deployment, Service, HPA, Ingress and NetworkPolicy per model service,
applied server-side, rolled out, smoke-tested through the Service, rolled back on failure.

Importing this package registers ``KubernetesTarget`` under ``"kubernetes"`` in ``DEPLOY_TARGETS``.
"""

from .client import ApiRetry, ClusterError, ClusterForbidden
from .config import DeployConfig, DeployConfigError, parse_deploy_config
from .manifests import manifests_to_yaml, render_manifests
from .target import KubernetesTarget
from .validation import validate_manifests

__all__ = [
    "ApiRetry",
    "ClusterError",
    "ClusterForbidden",
    "DeployConfig",
    "DeployConfigError",
    "KubernetesTarget",
    "manifests_to_yaml",
    "parse_deploy_config",
    "render_manifests",
    "validate_manifests",
]
