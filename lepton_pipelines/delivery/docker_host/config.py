"""Deploy configuration for the single-Docker-host target, and the checks that run before any container.

Everything here is validated up front so that a typo, a zero replica count or an untagged image
fails the run with the field named, before the host is touched and while the old version serves.
Secrets never appear in this config: ``pass_env`` lists variable *names* whose values are read from
the deploying process's environment at deploy time (``dagster.EnvVar`` style), so neither run
config nor metadata ever hold them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# The second (green) block starts this far above base_port, so it also caps the replica count.
SLOT_PORT_OFFSET = 100
# The gateway's public port and its loopback metrics port follow the two slot blocks by default.
GATEWAY_PORT_OFFSET = 2 * SLOT_PORT_OFFSET
DEFAULT_GATEWAY_BASE_IMAGE = "lepton/python-base:bookworm"
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the target itself: the model-service app listens on $PORT.
RESERVED_ENV_NAMES = frozenset({"PORT"})
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class InvalidDeployConfig(ValueError):
    """The deploy request cannot be carried out as written; nothing on the host was changed."""


def default_docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


class GatewayConfig(BaseModel):
    """The model's stable endpoint: an HAProxy container in front of the blue/green replicas.

    Secure by default: TLS and an API key are on, their values read at deploy time from the
    variables *named* here. Set ``tls_pem_env`` / ``api_key_env`` to null to run without them
    (a laptop); the gateway then says so in its config and the deploy result.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run the gateway; without it clients must follow the slot ports")
    port: int | None = Field(default=None, ge=1, le=65535, description="public port; default base_port+200")
    metrics_port: int | None = Field(
        default=None, ge=1024, le=65535, description="HAProxy's own /metrics on 127.0.0.1; default base_port+201"
    )
    bind_address: str = Field(default="127.0.0.1", description="address the public port binds to")
    api_key_env: str | None = Field(
        default="LEPTON_GATEWAY_API_KEY", description="name of the variable holding the API key clients must send"
    )
    tls_pem_env: str | None = Field(
        default="LEPTON_GATEWAY_TLS_PEM", description="name of the variable holding the PEM certificate chain + key"
    )
    image: str | None = Field(
        default=None, description="prebuilt gateway image; default: built from deployments/gateway"
    )
    base_image: str = Field(
        default_factory=lambda: os.environ.get("LEPTON_BASE_IMAGE") or DEFAULT_GATEWAY_BASE_IMAGE,
        description="BASE_IMAGE for building the gateway image",
    )
    drain_timeout_seconds: float = Field(
        default=35.0, gt=0, description="wait this long for the old HAProxy workers to finish their requests"
    )

    @field_validator("api_key_env", "tls_pem_env")
    @classmethod
    def _variable_name(cls, name: str | None) -> str | None:
        if name is not None and not ENV_NAME_PATTERN.match(name):
            raise ValueError(
                "give the *name* of an environment variable (allowed: [A-Za-z_][A-Za-z0-9_]*), never the secret itself"
            )
        return name


class DockerHostDeployConfig(BaseModel):
    """``DeployRequest.config`` for ``target: docker_host``."""

    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(default=1, ge=1, le=SLOT_PORT_OFFSET, description="containers of the new version")
    base_port: int = Field(
        default=18080,
        ge=1024,
        le=65535 - GATEWAY_PORT_OFFSET - 1,  # room for both blocks and the gateway's two ports
        description="blue slot uses base_port.., green slot base_port+100..; one port per replica",
    )
    health_timeout_seconds: float = Field(default=60.0, gt=0, description="time for all replicas to pass")
    health_poll_interval_seconds: float = Field(default=0.5, gt=0)
    request_timeout_seconds: float = Field(default=5.0, gt=0, description="per HTTP probe")
    stop_timeout_seconds: int = Field(default=10, ge=0, description="SIGTERM grace before SIGKILL")
    docker_host: str = Field(
        default_factory=default_docker_host,
        description="Docker engine URL; env DOCKER_HOST, else the local socket",
    )
    service_host: str = Field(
        default="127.0.0.1",
        description="address the replicas bind to and the gateway and deployer reach them at (loopback: "
        "only this host can call a replica directly)",
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="names of variables copied from the deploying process's environment into each container",
    )
    memory_limit: str | None = Field(default=None, pattern=r"^\d+[bkmg]?$", description="e.g. 512m")
    cpus: float | None = Field(default=None, gt=0)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @property
    def gateway_port(self) -> int:
        return self.gateway.port or self.base_port + GATEWAY_PORT_OFFSET

    @property
    def gateway_metrics_port(self) -> int:
        return self.gateway.metrics_port or self.base_port + GATEWAY_PORT_OFFSET + 1

    @field_validator("pass_env")
    @classmethod
    def _names_only(cls, names: list[str]) -> list[str]:
        for name in names:
            if "=" in name:
                raise ValueError(
                    f"{name.split('=', 1)[0]!r}: pass_env takes variable names only, never values; "
                    "set the variable in the deploying process's environment instead"
                )
            if not ENV_NAME_PATTERN.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (allowed: [A-Za-z_][A-Za-z0-9_]*)")
            if name in RESERVED_ENV_NAMES:
                raise ValueError(f"{name!r} is set by the docker_host target itself (one port per replica)")
        return names


def parse_deploy_config(raw: Mapping[str, Any], model_name: str) -> DockerHostDeployConfig:
    """Validate ``DeployRequest.config``; the error lists every bad field by its dotted path."""
    try:
        return DockerHostDeployConfig.model_validate(dict(raw))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: "
            + ("unknown field" if issue["type"] == "extra_forbidden" else issue["msg"])
            + (f" (got {issue['input']!r})" if _may_echo_input(issue) else "")
            for issue in error.errors()
        )
        allowed = ", ".join(DockerHostDeployConfig.model_fields)
        raise InvalidDeployConfig(
            f"docker_host deploy config for model {model_name!r} is invalid: {problems}. Allowed fields: {allowed}"
        ) from None


def _may_echo_input(issue: Mapping[str, Any]) -> bool:
    """Echo bad values to help the user, except where a secret may have been pasted by mistake."""
    field_name = issue["loc"][0] if issue["loc"] else None
    return (
        "input" in issue
        and issue["type"] != "extra_forbidden"
        and field_name in DockerHostDeployConfig.model_fields
        and field_name not in ("pass_env", "gateway")  # gateway.*_env: a pasted key must not be echoed
    )


def validate_model_name(model_name: str) -> str:
    """Model names become container names and label filters, so they must be Docker-name safe."""
    if not MODEL_NAME_PATTERN.match(model_name):
        raise InvalidDeployConfig(
            f"model_name {model_name!r} is not usable on a Docker host (allowed: {MODEL_NAME_PATTERN.pattern})"
        )
    return model_name


DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


def split_image_reference(image: str) -> tuple[str, str]:
    """``registry/repo:tag`` → (``registry/repo``, ``tag``); ``registry/repo[:tag]@sha256:…`` →
    (``registry/repo``, ``sha256:…``). Rejects references without a real version tag or digest.

    Blue/green tells versions apart by image, so a missing tag (implicit ``latest``) or ``latest``
    itself would make "old" and "new" indistinguishable and a rollback meaningless. A digest is the
    strongest pin (what the deploy job passes): the bytes that were smoke-tested, nothing else.
    """
    if "@" in image:
        name, digest = image.split("@", 1)
        if not DIGEST_PATTERN.match(digest):
            raise InvalidDeployConfig(f"image {image!r}: {digest!r} is not a sha256 digest (sha256:<64 hex>)")
        last_segment = name.rsplit("/", 1)[-1]
        repository = name.rsplit(":", 1)[0] if ":" in last_segment else name
        if not repository:
            raise InvalidDeployConfig(f"image {image!r} is not a valid <repository>@<digest> reference")
        return repository, digest
    last_segment = image.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        raise InvalidDeployConfig(
            f"image {image!r} has no tag: give the model version explicitly, e.g. {image}:<model_version>"
        )
    repository, tag = image.rsplit(":", 1)
    if not repository or not tag:
        raise InvalidDeployConfig(f"image {image!r} is not a valid <repository>:<tag> reference")
    if tag == "latest":
        raise InvalidDeployConfig(
            f"image {image!r}: 'latest' is not a version; deploy the model version tag so rollbacks are exact"
        )
    return repository, tag


def resolve_pass_env(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Read the values for ``pass_env`` from ``environ``; every missing name is reported at once."""
    missing = [name for name in names if name not in environ]
    if missing:
        raise InvalidDeployConfig(
            f"pass_env names variables that are not set in the deploying process's environment: "
            f"{', '.join(missing)}; set them (e.g. via the run launcher's env) or remove them from pass_env"
        )
    return {name: environ[name] for name in names}


MIN_API_KEY_CHARS = 16


def resolve_gateway_secrets(settings: GatewayConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The gateway's API key and TLS PEM, read from the variables the config names; every gap at once.

    Returned under the fixed names the gateway container reads (``LEPTON_GATEWAY_API_KEY``,
    ``LEPTON_GATEWAY_TLS_PEM``). Values are never echoed in errors.
    """
    from .gateway_config import API_KEY_VARIABLE, TLS_PEM_VARIABLE

    problems = []
    for name, what in ((settings.api_key_env, "API key"), (settings.tls_pem_env, "TLS certificate chain + key (PEM)")):
        if name and not environ.get(name):
            problems.append(f"{name} (the gateway's {what}) is not set")
    if (
        settings.api_key_env
        and environ.get(settings.api_key_env)
        and len(environ[settings.api_key_env]) < MIN_API_KEY_CHARS
    ):
        problems.append(f"{settings.api_key_env} is shorter than {MIN_API_KEY_CHARS} characters")
    pem = environ.get(settings.tls_pem_env or "", "")
    if settings.tls_pem_env and pem and ("BEGIN CERTIFICATE" not in pem or "PRIVATE KEY" not in pem):
        problems.append(f"{settings.tls_pem_env} must hold a PEM certificate chain and its private key")
    if problems:
        raise InvalidDeployConfig(
            "the model gateway is secure by default: " + "; ".join(problems) + ". Set them in the deploying "
            "process's environment (e.g. the run launcher's secrets), or set gateway.api_key_env / "
            "gateway.tls_pem_env to null to run without them (not for shared networks)"
        )
    secrets = {}
    if settings.api_key_env:
        secrets[API_KEY_VARIABLE] = environ[settings.api_key_env]
    if settings.tls_pem_env:
        secrets[TLS_PEM_VARIABLE] = pem
    return secrets
