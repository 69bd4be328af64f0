"""The few Kubernetes API calls the deployer makes, with retries and errors people can act on.

Built on the official ``kubernetes`` client. Responses are read as plain dicts
(``_preload_content=False``) so the deployer works on exactly what the API server returned and the
manifests it compares against are the same dicts it rendered.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from .manifests import FIELD_MANAGER, SERVICE_PORT

RBAC_HINT = "deployments/kubernetes/deployer-rbac.yaml"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
REQUEST_TIMEOUT_SECONDS = 30


class ClusterError(Exception):
    """A Kubernetes API call failed for good (after retries, or immediately when retrying cannot help)."""


class ClusterForbidden(ClusterError):
    """RBAC denied a call: retrying cannot help, the Role needs the verb."""


@dataclass(frozen=True)
class ApiRetry:
    """Backoff for transient API errors (429, 5xx, dropped connections) and apply conflicts (409).

    Not Dagster's ``RetryPolicy`` (which re-runs a whole op): this retries one API call inside a step."""

    attempts: int = 5
    initial_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:  # delta-seconds or an HTTP date, read by urllib3 (which the kubernetes client runs on)
            try:
                return min(float(Retry().parse_retry_after(retry_after)), self.max_delay_seconds)
            except InvalidHeader:
                pass
        backoff = min(self.initial_delay_seconds * 2 ** (attempt - 1), self.max_delay_seconds)
        return backoff * random.uniform(0.8, 1.2)  # jitter: parallel deploys do not retry in lockstep


@dataclass(frozen=True)
class _Kind:
    group: str  # "" for the core group
    plural: str
    api: Callable[[k8s.ApiClient], Any]
    method_suffix: str

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, _Kind] = {
    "Deployment": _Kind("apps", "deployments", k8s.AppsV1Api, "namespaced_deployment"),
    "Service": _Kind("", "services", k8s.CoreV1Api, "namespaced_service"),
    "HorizontalPodAutoscaler": _Kind(
        "autoscaling", "horizontalpodautoscalers", k8s.AutoscalingV2Api, "namespaced_horizontal_pod_autoscaler"
    ),
    "Ingress": _Kind("networking.k8s.io", "ingresses", k8s.NetworkingV1Api, "namespaced_ingress"),
    "NetworkPolicy": _Kind("networking.k8s.io", "networkpolicies", k8s.NetworkingV1Api, "namespaced_network_policy"),
}

# Service proxy calls are authorized as verbs on the ``services/proxy`` subresource.
_SERVICE_PROXY = _Kind("", "services/proxy", k8s.CoreV1Api, "")
_PODS = _Kind("", "pods", k8s.CoreV1Api, "")
_SERVICES = _Kind("", "services", k8s.CoreV1Api, "")
_ENDPOINT_SLICES = _Kind("discovery.k8s.io", "endpointslices", k8s.DiscoveryV1Api, "")
_POD_PROXY = _Kind("", "pods/proxy", k8s.CoreV1Api, "")


class _NotFound(Exception):
    pass


_TRANSIENT_CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, ConnectionError)


def _is_transient(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _json(raw: bytes) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


def _server_message(error: ApiException) -> str:
    try:
        return json.loads(error.body).get("message") or error.reason
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)


class ClusterClient:
    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        retry: ApiRetry = ApiRetry(),
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._api_client = api_client
        self._retry = retry
        self._log = log
        self._sleep = sleep

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: the API server merges our fields, creating the object if absent."""
        kind = KINDS[manifest["kind"]]
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        patch = getattr(kind.api(self._api_client), f"patch_{kind.method_suffix}")
        return _json(
            self._call(
                "patch",
                kind,
                namespace,
                name,
                lambda: patch(
                    name,
                    namespace,
                    manifest,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY_CONTENT_TYPE,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                ),
                on_conflict=lambda: self._log_conflict(manifest["kind"], namespace, name),
            )
        )

    def get(self, kind_name: str, namespace: str, name: str) -> dict[str, Any] | None:
        kind = KINDS[kind_name]
        read = getattr(kind.api(self._api_client), f"read_{kind.method_suffix}")
        try:
            return _json(
                self._call(
                    "get",
                    kind,
                    namespace,
                    name,
                    lambda: read(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS),
                    absent_ok=True,
                )
            )
        except _NotFound:
            return None

    def delete(self, kind_name: str, namespace: str, name: str) -> bool:
        """Delete; ``False`` when it was already gone."""
        kind = KINDS[kind_name]
        remove = getattr(kind.api(self._api_client), f"delete_{kind.method_suffix}")
        try:
            self._call(
                "delete",
                kind,
                namespace,
                name,
                lambda: remove(
                    name,
                    namespace,
                    propagation_policy="Foreground",
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                ),
                absent_ok=True,
            )
        except _NotFound:
            return False
        return True

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Pods matching ``labels`` (as plain dicts), to read their container states."""
        core = k8s.CoreV1Api(self._api_client)
        return self._list(_PODS, namespace, _label_selector(labels), core.list_namespaced_pod)

    def list_services(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Services matching ``labels`` (the service catalog's discovery)."""
        core = k8s.CoreV1Api(self._api_client)
        return self._list(_SERVICES, namespace, _label_selector(labels), core.list_namespaced_service)

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """The EndpointSlices of one Service: its pods' addresses and their ready conditions."""
        discovery = k8s.DiscoveryV1Api(self._api_client)
        selector = f"kubernetes.io/service-name={service}"
        return self._list(_ENDPOINT_SLICES, namespace, selector, discovery.list_namespaced_endpoint_slice)

    def _list(
        self, kind: _Kind, namespace: str, selector: str, list_namespaced: Callable[..., Any]
    ) -> list[dict[str, Any]]:
        """The items of one ``list_namespaced_*`` call filtered by ``selector``, as the API server sent them."""
        raw = self._call(
            "list",
            kind,
            namespace,
            selector,
            lambda: list_namespaced(
                namespace, label_selector=selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )
        return _json(raw).get("items") or []

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
        """GET a path on one pod through the API server's pod proxy; (status, body), also for non-2xx."""
        core = k8s.CoreV1Api(self._api_client)
        try:
            response = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{port}", namespace, path, _preload_content=False, _request_timeout=timeout
            )
            return response.status, response.data or b""
        except ApiException as error:
            return error.status, (error.body or b"") if isinstance(error.body, bytes) else str(
                error.body or ""
            ).encode()
        except _TRANSIENT_CONNECTION_ERRORS:
            return 0, b""

    def service_proxy_get(self, namespace: str, service: str, path: str, timeout: float) -> bytes:
        """GET a path on the Service through the API server's service proxy (``services/proxy``)."""
        core = k8s.CoreV1Api(self._api_client)
        return self._call(
            "get",
            _SERVICE_PROXY,
            namespace,
            service,
            lambda: core.connect_get_namespaced_service_proxy_with_path(
                f"{service}:{SERVICE_PORT}", namespace, path, _preload_content=False, _request_timeout=timeout
            ),
        )

    def service_proxy_post_json(self, namespace: str, service: str, path: str, body: Any, timeout: float) -> bytes:
        """POST JSON through the service proxy. The generated ``connect_post_…_proxy_with_path``
        takes no body, so this calls the same REST path through the client's ``call_api``."""
        return self._call(
            "create",
            _SERVICE_PROXY,
            namespace,
            service,
            lambda: self._api_client.call_api(
                "/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}",
                "POST",
                path_params={"namespace": namespace, "name": f"{service}:{SERVICE_PORT}", "path": path},
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            ),
        )

    def _log_conflict(self, kind_name: str, namespace: str, name: str) -> None:
        """A 409 means the object changed while we wrote it; re-read it and report who else manages
        it (``kubectl edit``, another deployer, an operator) before applying again."""
        current = self.get(kind_name, namespace, name) or {}
        managers = sorted(
            {entry.get("manager", "?") for entry in current.get("metadata", {}).get("managedFields") or []}
        )
        version = current.get("metadata", {}).get("resourceVersion", "?")
        self._log(
            f"conflict applying {kind_name} {namespace}/{name}: re-read resourceVersion {version} "
            f"(field managers: {', '.join(managers) or 'none'}); applying again"
        )

    def _call(
        self,
        verb: str,
        kind: _Kind,
        namespace: str,
        name: str,
        request: Callable[[], Any],
        on_conflict: Callable[[], None] | None = None,
        absent_ok: bool = False,
    ) -> bytes:
        """Run one API request; return the raw response body. With ``absent_ok`` a 404 raises
        ``_NotFound`` for the caller to treat as "does not exist"; otherwise it is an error."""
        what = f"{verb} {kind.resource} {namespace}/{name}"
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._retry.attempts
            try:
                return request().data or b""
            except ApiException as error:
                if error.status == 404 and absent_ok:
                    raise _NotFound(what) from None
                if error.status == 403:
                    raise ClusterForbidden(
                        f"forbidden: the deployer may not {verb} {kind.resource} in namespace {namespace!r} "
                        f"({_server_message(error)}). Grant '{verb}' on '{kind.resource}' in the Role of "
                        f"{RBAC_HINT} and apply it to the cluster."
                    ) from None
                if error.status == 409 and on_conflict is not None and not last:
                    on_conflict()
                    continue
                if not _is_transient(error.status) or last:
                    raise ClusterError(f"{what} failed: HTTP {error.status} {_server_message(error)}") from None
                delay = self._retry.delay(attempt, error.headers.get("Retry-After") if error.headers else None)
                self._log(f"{what}: HTTP {error.status} {error.reason}; retry {attempt} in {delay:.1f}s")
            except _TRANSIENT_CONNECTION_ERRORS as error:
                if last:
                    raise ClusterError(f"{what} failed: cannot reach the API server: {error}") from None
                delay = self._retry.delay(attempt)
                self._log(f"{what}: {type(error).__name__}; retry {attempt} in {delay:.1f}s")
            self._sleep(delay)


def _label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
