"""``kubernetes`` deploy target: validate, render, apply, verify, roll back.

Construction never touches a cluster (the deploy job builds targets at definition-load time); the
API client is resolved on the first ``deploy`` call: an explicit ``api_client`` or ``host``, else
in-cluster service-account config, else the kubeconfig.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from lepton_pipelines.delivery.images.registry import RegistryClient, RegistryError, split_repository
from lepton_pipelines.delivery.targets import (
    DeployFailed,
    DeployRequest,
    DeployResult,
    DeployTarget,
    register_target,
)

from .client import ApiRetry, ClusterClient
from .config import DeployConfigError, parse_deploy_config, validate_request_identity
from .deployer import TARGET_NAME, KubernetesDeployer
from .manifests import manifests_to_yaml, render_manifests
from .validation import validate_manifests


@register_target
class KubernetesTarget(DeployTarget):
    name = TARGET_NAME

    def __init__(
        self,
        *,
        api_client: k8s.ApiClient | None = None,
        host: str | None = None,
        token_env_var: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        dry_run: bool = False,
        kubernetes_version: str | None = None,
        poll_interval_seconds: float = 2.0,
        smoke_test_timeout_seconds: float = 10.0,
        retry: ApiRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pin_digest: bool = True,
    ):
        """
        api_client / host: talk to this API server (``host`` e.g. ``https://k8s.example:6443``);
            with ``host`` the bearer token is read from the environment variable ``token_env_var``.
        kubeconfig / context: used when not running in a cluster and no host is given.
        dry_run: render and schema-validate only; no API calls.
        kubernetes_version: schema version for validation (default: newest kubernetes-validate knows).
        pin_digest: resolve a tagged image in its registry and deploy ``<repo>:<tag>@sha256:…`` (the
            bytes that were smoke-tested; a missing tag fails before any apply). Registry credentials:
            LEPTON_IMAGE_REGISTRY_USERNAME / LEPTON_IMAGE_REGISTRY_PASSWORD.
        """
        self._pin_digest = pin_digest
        self._api_client = api_client
        self._host = host
        self._token_env_var = token_env_var
        self._kubeconfig = kubeconfig
        self._context = context
        self.dry_run = dry_run
        self._kubernetes_version = kubernetes_version
        self._poll_interval = poll_interval_seconds
        self._smoke_timeout = smoke_test_timeout_seconds
        self._retry = retry or ApiRetry()
        self._sleep = sleep

    def deploy(self, request: DeployRequest, log: Callable[[str], None] = print) -> DeployResult:
        # Everything that can be checked offline is checked before the first API call.
        validate_request_identity(request.model_name, request.model_version, request.image)
        config = parse_deploy_config(request.config, model_name=request.model_name)
        request, pin_note = self._pinned(request)
        log(pin_note)
        manifests = render_manifests(request, config)
        schema_version = validate_manifests(manifests, self._kubernetes_version)
        manifests_yaml = manifests_to_yaml(manifests)
        log(
            f"rendered {len(manifests)} manifests for {request.model_name} {request.model_version}, "
            f"valid for Kubernetes {schema_version}"
        )
        if self.dry_run:
            return DeployResult(
                ok=True,
                target=self.name,
                serving_image=None,
                message=f"dry run: {len(manifests)} manifests rendered and valid for Kubernetes {schema_version}; "
                "nothing was applied",
                details={
                    "namespace": config.namespace,
                    "manifests_yaml": manifests_yaml,
                    "dry_run": True,
                    "image_pinned": request.image if "@sha256:" in request.image else "",
                    "pin": pin_note,
                },
            )
        cluster = ClusterClient(self._resolve_api_client(), retry=self._retry, log=log, sleep=self._sleep)
        deployer = KubernetesDeployer(
            cluster,
            poll_interval_seconds=self._poll_interval,
            smoke_test_timeout_seconds=self._smoke_timeout,
            log=log,
            sleep=self._sleep,
        )
        try:
            result = deployer.deploy(request, config, manifests)
        except DeployFailed as failure:
            failure.result.details["manifests_yaml"] = manifests_yaml
            raise
        result.details["manifests_yaml"] = manifests_yaml
        result.details["image_pinned"] = request.image
        return result

    def _pinned(self, request: DeployRequest) -> tuple[DeployRequest, str]:
        """The request with its image pinned by digest, and a line saying what was done."""
        if "@sha256:" in request.image:
            return request, f"image {request.image} is pinned by digest"
        if not self._pin_digest:
            return request, f"image {request.image} deployed by tag (pin_digest: false)"
        name, tag = request.image.rsplit(":", 1)
        try:
            registry, path = split_repository(name)
            remote = RegistryClient(
                registry,
                os.environ.get("LEPTON_IMAGE_REGISTRY_USERNAME"),
                os.environ.get("LEPTON_IMAGE_REGISTRY_PASSWORD"),
            ).manifest(path, tag)
        except RegistryError as error:
            if self.dry_run:
                return request, f"dry run: could not pin {request.image} by digest ({error})"
            raise DeployConfigError(f"cannot pin {request.image} by digest before deploying: {error}") from None
        if remote is None:
            if self.dry_run:
                return request, f"dry run: {request.image} is not in its registry (yet); rendered by tag"
            raise DeployConfigError(
                f"image {request.image} is not in its registry: pods would end in ImagePullBackOff. Build and push "
                "it first (job build_model_image), then deploy"
            )
        return replace(request, image=remote.pinned), f"pinned {request.image} to {remote.digest}"

    def _resolve_api_client(self) -> k8s.ApiClient:
        if self._api_client is None:
            self._api_client = api_client_for(self._host, self._token_env_var, self._kubeconfig, self._context)
        return self._api_client


def api_client_for(
    host: str | None = None, token_env_var: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> k8s.ApiClient:
    """An API client for ``host`` (bearer token from the environment variable ``token_env_var``), else the
    in-cluster service account, else the kubeconfig. Shared by the deploy target and the service catalog."""
    configuration = k8s.Configuration()
    if host:
        configuration.host = host
        if token_env_var:
            token = os.environ.get(token_env_var)
            if not token:
                raise RuntimeError(f"environment variable {token_env_var} (API server token) is not set")
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return k8s.ApiClient(configuration)
