"""Per-model Kubernetes deploy configuration, validated before anything touches a cluster.

The deploy job passes ``DeployRequest.config`` (a YAML dict written by the model's owners) through
:func:`parse_deploy_config`. Every mistake — an unknown key, a negative replica count, ``512MB``
instead of ``512Mi``, an untagged image — becomes a :class:`DeployConfigError` that names the field
and what is allowed, so a bad config never produces a half-applied deployment.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kubernetes.utils import parse_quantity
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_NAMESPACE = "lepton-models"

# Kubernetes' own grammar for resource quantities (k8s.io/apimachinery/pkg/api/resource).
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_INT_OR_PERCENT = re.compile(r"^\d+%$")
QUANTITY_HELP = "a Kubernetes quantity such as 250m, 0.5, 2 (CPU) or 128Mi, 1Gi, 500M (memory)"


class DeployConfigError(ValueError):
    """The deploy configuration or request is invalid; raised before any API call."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_quantity(value: str | int | float | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise ValueError(f"{value!r} is not {QUANTITY_HELP}")
    return text


def _check_label_map(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_VALUE.match(value) or len(value) > 63:
            raise ValueError(f"label {key}={value!r}: values are at most 63 alphanumerics, '-', '_' or '.'")
    return labels


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} must be >= 0 (an integer or a percentage like '25%')")
        return value
    if not _INT_OR_PERCENT.match(value):
        raise ValueError(f"{value!r} must be a non-negative integer or a percentage like '25%'")
    return value


class ResourceQuantities(_Strict):
    cpu: str | None = None
    memory: str | None = None
    ephemeral_storage: str | None = Field(default=None, alias="ephemeral-storage")

    _quantities = field_validator("cpu", "memory", "ephemeral_storage", mode="before")(_check_quantity)

    def as_manifest(self) -> dict[str, str]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Resources(_Strict):
    requests: ResourceQuantities = ResourceQuantities(cpu="250m", memory="256Mi")
    limits: ResourceQuantities = ResourceQuantities(cpu="1", memory="512Mi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        # The API server rejects a request above its limit; say so before applying anything.
        for resource, request in self.requests.as_manifest().items():
            limit = self.limits.as_manifest().get(resource)
            if limit is not None and parse_quantity(request) > parse_quantity(limit):
                raise ValueError(f"requests.{resource} {request} exceeds limits.{resource} {limit}")
        return self


class HpaConfig(_Strict):
    """CPU-based autoscaling. When enabled the Deployment leaves ``spec.replicas`` to the HPA, so a
    deploy never resets a scaled-out service back to its minimum in the middle of a load peak."""

    enabled: bool = True
    min_replicas: int | None = Field(default=None, ge=1, description="defaults to `replicas`")
    max_replicas: int = Field(default=10, ge=1)
    cpu_target_percent: int = Field(default=70, ge=1, le=1000)


class IngressConfig(_Strict):
    """The public route to a model: only ``<path>/predict`` (never ``/metrics``), TLS and authentication
    on by default. ``tls_secret`` defaults to ``model-<name>-tls``; authentication is ingress-nginx
    basic auth from the Secret ``basic_auth_secret`` (default ``model-<name>-basic-auth``, an htpasswd
    ``auth`` key), or external auth when ``auth_url`` is set. ``allow_plaintext`` / ``auth: none``
    must be said out loud to switch either off."""

    enabled: bool = True
    host: str | None = None
    path: str | None = Field(default=None, description="defaults to /models/<model name>")
    ingress_class: str | None = "nginx"
    tls_secret: str | None = None
    allow_plaintext: bool = False
    auth: str = Field(default="basic", pattern="^(basic|external|none)$")
    basic_auth_secret: str | None = None
    basic_auth_realm: str = "lepton model"
    # ingress-nginx external auth: every request is first sent to auth_url; non-2xx is rejected.
    auth_url: str | None = None
    auth_signin: str | None = None
    auth_response_headers: list[str] = []
    # Strip the /models/<name> prefix so the service sees /predict (ingress-nginx rewrite).
    strip_path_prefix: bool = True
    annotations: dict[str, str] = {}

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value.endswith("/") and value != "/"):
            raise ValueError(f"{value!r} must start with '/' and not end with '/', e.g. /models/churn")
        return value

    @model_validator(mode="after")
    def _tls_and_auth_consistent(self) -> IngressConfig:
        if self.tls_secret and not self.host:
            raise ValueError("tls_secret needs a host: a TLS certificate is issued for a host name")
        if self.auth_url and self.auth == "basic":
            object.__setattr__(self, "auth", "external")  # an auth_url means external auth
        if self.auth == "external" and not self.auth_url:
            raise ValueError("auth: external needs auth_url (the ingress-nginx external auth endpoint)")
        return self


class GatewaySelector(_Strict):
    """Who may call the model pods: the API gateway / ingress controller pods."""

    namespace_labels: dict[str, str] = {"kubernetes.io/metadata.name": "ingress-nginx"}
    pod_labels: dict[str, str] = {"app.kubernetes.io/name": "ingress-nginx"}

    _labels = field_validator("namespace_labels", "pod_labels")(_check_label_map)


class MetricsScraperSelector(GatewaySelector):
    """Who may scrape ``/metrics`` on the pods directly (inside the cluster; never through the Ingress)."""

    namespace_labels: dict[str, str] = {"kubernetes.io/metadata.name": "monitoring"}
    pod_labels: dict[str, str] = {"app.kubernetes.io/name": "prometheus"}


class NetworkPolicyConfig(_Strict):
    enabled: bool = True
    gateway: GatewaySelector = GatewaySelector()
    metrics_scrapers: MetricsScraperSelector | None = MetricsScraperSelector()
    # Extra sources by CIDR, e.g. the control-plane range so the deployer's smoke test through the
    # API server's service proxy is not blocked, or a Prometheus node range for /metrics.
    allow_cidrs: list[str] = []

    @field_validator("allow_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a CIDR such as 10.0.0.0/16") from None
        return values


class RolloutConfig(_Strict):
    timeout_seconds: int = Field(default=600, ge=1)
    progress_deadline_seconds: int = Field(default=300, ge=1)
    max_surge: int | str = "25%"
    max_unavailable: int | str = 0

    _int_or_percent = field_validator("max_surge", "max_unavailable")(_check_int_or_percent)

    @model_validator(mode="after")
    def _can_make_progress(self) -> RolloutConfig:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError("max_surge and max_unavailable cannot both be 0: the rollout could never start")
        return self


class CanaryConfig(_Strict):
    """Start the new image as a small separate Deployment behind the same Service first; the main
    Deployment is only touched once the canary is rolled out and passes the smoke test."""

    enabled: bool = False
    replicas: int = Field(default=1, ge=1)


class DeployConfig(_Strict):
    namespace: str = DEFAULT_NAMESPACE
    replicas: int = Field(default=3, ge=0)
    resources: Resources = Resources()
    hpa: HpaConfig = HpaConfig()
    ingress: IngressConfig = IngressConfig()
    network_policy: NetworkPolicyConfig = NetworkPolicyConfig()
    rollout: RolloutConfig = RolloutConfig()
    canary: CanaryConfig = CanaryConfig()
    service_account_name: str | None = None
    image_pull_secrets: list[str] = []

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError(f"{value!r} must be a DNS label: lowercase letters, digits and '-', at most 63")
        return value

    @model_validator(mode="after")
    def _autoscaling_consistent(self) -> DeployConfig:
        if self.hpa.enabled:
            if self.replicas == 0:
                raise ValueError("replicas 0 needs hpa.enabled: false (an autoscaler never scales from 0)")
            if self.hpa_min_replicas > self.hpa.max_replicas:
                raise ValueError(
                    f"hpa.min_replicas ({self.hpa_min_replicas}) exceeds hpa.max_replicas ({self.hpa.max_replicas})"
                )
        return self

    @property
    def hpa_min_replicas(self) -> int:
        return self.hpa.min_replicas if self.hpa.min_replicas is not None else self.replicas


def parse_deploy_config(raw: dict[str, Any] | None, *, model_name: str = "") -> DeployConfig:
    """Validate a model's deploy config; every problem is listed with its field path."""
    subject = f"Kubernetes deploy config for model {model_name!r}" if model_name else "Kubernetes deploy config"
    if raw is not None and not isinstance(raw, dict):
        raise DeployConfigError(f"{subject}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return DeployConfig.model_validate(raw or {})
    except ValidationError as error:
        problems = [_describe(item) for item in error.errors()]
        raise DeployConfigError(f"{subject} is invalid:\n  " + "\n  ".join(problems)) from None


def _describe(item: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in item["loc"]) or "(top level)"
    if item["type"] == "extra_forbidden":
        allowed = _allowed_fields(item["loc"][:-1])
        return f"{where}: unknown field; allowed fields here: {', '.join(allowed)}"
    message = item["msg"].removeprefix("Value error, ")
    given = item.get("input")
    # Our own value errors already quote the input; pydantic's built-in messages do not.
    quoted = item["type"] == "value_error" or isinstance(given, dict) or "input" not in item
    shown = "" if quoted else f" (got {given!r})"
    return f"{where}: {message}{shown}"


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = DeployConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [info.alias or name for name, info in model.model_fields.items()]


def validate_request_identity(model_name: str, model_version: str, image: str) -> None:
    """Reject requests that cannot become valid Kubernetes names, labels or a pinned image."""
    if not re.match(r"^[a-z][a-z0-9_-]{0,51}$", model_name):
        raise DeployConfigError(
            f"model name {model_name!r}: must start with a lowercase letter and use only a-z, 0-9, '_' "
            "or '-' (at most 52 characters, so 'model-<name>-canary' stays a valid Kubernetes name)"
        )
    if not model_version or len(model_version) > 63 or not _LABEL_VALUE.match(model_version):
        raise DeployConfigError(
            f"model version {model_version!r}: must be a Kubernetes label value — at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending alphanumeric"
        )
    validate_image_reference(image)


def validate_image_reference(image: str) -> None:
    """An image must be pinned by tag or digest: ``latest`` or no tag makes rollback meaningless,
    because "the previous image" could silently be the same moving reference."""
    if "@sha256:" in image:
        return
    last_component = image.rsplit("/", 1)[-1]
    if ":" not in last_component:
        raise DeployConfigError(
            f"image {image!r} has no tag: use an explicit version tag such as "
            f"{image}:<model version>, or a digest (@sha256:...)"
        )
    tag = last_component.split(":", 1)[1]
    if tag == "latest" or not tag:
        raise DeployConfigError(
            f"image {image!r}: the tag {tag or '(empty)'!r} is not pinned; use the model version tag or a digest"
        )
