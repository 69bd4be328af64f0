"""The ``docker_host`` deploy target: blue/green model-service containers behind one gateway per model.

For edge sites and dev laptops that have Docker but no Kubernetes. The new version starts beside the
old one (the other port block, loopback only), must pass /health, /ready and a /predict smoke test
on every replica, and only then does the model's gateway (HAProxy, ``gateway.py``) switch to it with a
graceful reload — clients keep one address and no request is refused. The old containers stop once
the gateway's old workers have finished their requests. Any failure removes the new containers and
leaves the old ones serving, so a bad model never takes traffic and never takes the old one down; a
terminal answer (model failed to load, crash loop) ends the wait at once.

Containers run exactly as the smoke test ran them (``delivery.hardening``): non-root, read-only root
filesystem, no capabilities, bound to ``service_host`` only.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from requests import RequestException

from ..hardening import HARDENING, hardening_problems
from ..targets import DeployFailed, DeployRequest, DeployResult, DeployTarget, register_target
from .config import (
    DockerHostDeployConfig,
    parse_deploy_config,
    resolve_gateway_secrets,
    resolve_pass_env,
    split_image_reference,
    validate_model_name,
)
from .gateway import Gateway, GatewayError, ensure_gateway_image, public_host
from .gateway_config import Backend, GatewaySpec
from .health import ReplicaCheckFailed, probe, verify_replica
from .slots import (
    ReplicaRecord,
    container_labels,
    container_name,
    owner_label_filters,
    plan_slots,
    record_from_container_attrs,
    slot_ports,
)

LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    slot: str
    version: str
    image: str
    state: str
    endpoint: str | None
    healthy: bool | None  # GET /health answered 2xx; None when the container is not running


@dataclass(frozen=True)
class DockerHostStatus:
    model_name: str
    serving_slot: str | None
    serving_image: str | None
    serving_version: str | None
    replicas: list[ReplicaStatus]
    gateway_url: str | None = None  # the model's stable address, when its gateway runs


def _endpoint(service_host: str, port: int) -> str:
    return f"http://{service_host}:{port}"


def _connect(config: DockerHostDeployConfig) -> docker.DockerClient:
    """Honour DOCKER_TLS_VERIFY / DOCKER_CERT_PATH like the docker CLI does, with our base URL."""
    kwargs = docker.utils.kwargs_from_env()
    kwargs["base_url"] = config.docker_host
    return docker.DockerClient(**kwargs)


def _list_replicas(client: docker.DockerClient, model_name: str) -> list[tuple[Container, ReplicaRecord]]:
    containers = client.containers.list(all=True, filters={"label": owner_label_filters(model_name)})
    pairs = [(container, record_from_container_attrs(container.attrs)) for container in containers]
    return sorted(pairs, key=lambda pair: (pair[1].slot, pair[1].port or 0))


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _last_log_lines(container: Container) -> list[str]:
    try:
        raw = container.logs(tail=LOG_TAIL_LINES, stdout=True, stderr=True)
    except (DockerException, RequestException) as error:
        return [f"<logs unavailable: {getattr(error, 'explanation', None) or error}>"]
    return raw.decode(errors="replace").rstrip("\n").splitlines()


def _death_of(container: Container) -> str | None:
    """Why the container can no longer become healthy, or None while it still can."""
    try:
        container.reload()
    except NotFound:
        return "container was removed"
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        return f"container exited with code {state.get('ExitCode')}"
    restarts = container.attrs.get("RestartCount", 0)
    if state.get("Restarting") or restarts > 0:
        # Once Docker has restarted it, State.ExitCode describes the new process (0), not the crash.
        exit_code = state.get("ExitCode")
        code = f", last exit code {exit_code}" if exit_code else ""
        return f"container crashed and is being restarted (restarts: {restarts}{code})"
    return None


def _remove(containers: list[Container], stop_timeout: int, log: Callable[[str], None]) -> list[str]:
    """Stop gracefully, then remove; returns the names that could not be removed."""
    left_behind = []
    for container in containers:
        try:
            container.stop(timeout=stop_timeout)
            container.remove(force=True)
        except NotFound:
            continue
        except (DockerException, RequestException) as error:
            log(f"could not remove container {container.name}: {getattr(error, 'explanation', None) or error}")
            left_behind.append(container.name)
    return left_behind


def _describe_serving(model_name: str, previous: list[tuple[Container, ReplicaRecord]], service_host: str) -> str:
    if not previous:
        return f"Nothing is serving model {model_name!r} on this host (this was its first deploy)."
    for container, _ in previous:
        try:
            container.reload()
        except NotFound:
            container.attrs["State"] = {"Running": False}
    running = [record for container, record in previous if container.attrs.get("State", {}).get("Running")]
    endpoints = ", ".join(_endpoint(service_host, r.port) for r in running if r.port is not None)
    image = previous[0][1].image
    if len(running) == len(previous):
        return f"Still serving: {image} ({len(running)} container(s) at {endpoints})."
    return (
        f"Previous version {image} was left untouched, but only {len(running)} of {len(previous)} "
        f"of its containers are running{' (' + endpoints + ')' if endpoints else ''}."
    )


def _gateway_spec(model_name: str, config: DockerHostDeployConfig) -> GatewaySpec:
    return GatewaySpec(
        model_name=model_name,
        bind_address=config.gateway.bind_address,
        port=config.gateway_port,
        metrics_port=config.gateway_metrics_port,
        tls=bool(config.gateway.tls_pem_env),
        api_key=bool(config.gateway.api_key_env),
    )


def _gateway_for(
    client: docker.DockerClient,
    model_name: str,
    config: DockerHostDeployConfig,
    secrets: dict[str, str],
    log: Callable[[str], None],
) -> Gateway:
    return Gateway(client, _gateway_spec(model_name, config), config.gateway, secrets, log)


def _restore_gateway(
    gateway: Gateway | None,
    previous: list[tuple[Container, ReplicaRecord]],
    config: DockerHostDeployConfig,
    gateway_image: str,
    log: Callable[[str], None],
) -> None:
    """After a failed switch: point the gateway back at the previous replicas (or remove a gateway
    that only ever pointed at the failed ones)."""
    if gateway is None:
        return
    try:
        if previous:
            backends = [Backend(r.name, config.service_host, r.port) for _, r in previous if r.port is not None]
            gateway.route_to(backends, previous[0][1].version, gateway_image)
            log(f"gateway {gateway.name} points at the previous version {previous[0][1].version} again")
        else:
            gateway.remove()
    except (GatewayError, DockerException) as error:
        log(f"could not restore gateway {gateway.name}: {error}")


def _roll_back(
    target: str,
    request: DeployRequest,
    config: DockerHostDeployConfig,
    slot: str,
    ports: list[int],
    new: list[tuple[Container, int]],
    failing: Container | None,
    error: Exception,
    previous: list[tuple[Container, ReplicaRecord]],
    log: Callable[[str], None],
) -> DeployFailed:
    logs = {container.name: _last_log_lines(container) for container, _ in new}
    left_behind = _remove([c for c, _ in new], 0, log)
    if isinstance(error, ReplicaCheckFailed) and failing is not None:
        failing_port = next(port for container, port in new if container is failing)
        what = f"replica {failing.name} on port {failing_port}: {error}"
        if error.terminal:
            what += " (terminal: not waiting for the health timeout)"
    elif isinstance(error, GatewayError):
        what = f"switching the gateway failed: {error}"
    else:
        what = f"starting the new containers failed: {getattr(error, 'explanation', None) or error}"
    cleanup = (
        f"removed the {len(new)} new container(s)"
        if not left_behind
        else f"could NOT remove new container(s) {', '.join(left_behind)}; remove them by hand"
    )
    serving = _describe_serving(request.model_name, previous, config.service_host)
    failing_logs = logs.get(failing.name, []) if failing is not None else []
    log_excerpt = (
        f"\nLast log lines of {failing.name}:\n" + "\n".join(f"  {line}" for line in failing_logs)
        if failing is not None
        else ""
    )
    message = (
        f"docker_host deploy of {request.image} for model {request.model_name!r} failed: {what}. "
        f"Rolled back: {cleanup}. {serving}{log_excerpt}"
    )
    log(message)
    previous_image = previous[0][1].image if previous else None
    return DeployFailed(
        DeployResult(
            ok=False,
            target=target,
            serving_image=previous_image,
            previous_image=previous_image,
            rolled_back=True,
            message=message,
            details={
                "failed_check": getattr(
                    error, "check", "gateway" if isinstance(error, GatewayError) else "container start"
                ),
                "terminal": bool(getattr(error, "terminal", False)),
                "failed_slot": slot,
                "failed_ports": ports,
                "new_container_logs": logs,
                "new_containers_left_behind": left_behind,
                "serving_endpoints": [
                    _endpoint(config.service_host, r.port) for _, r in previous if r.port is not None
                ],
            },
        )
    )


class _Rollout:
    """One deploy of one model on one host: the state the steps share, and one method per step."""

    def __init__(
        self,
        target: str,
        client: docker.DockerClient,
        request: DeployRequest,
        config: DockerHostDeployConfig,
        log: Callable[[str], None],
    ):
        self.target, self.client, self.request, self.config, self.log = target, client, request, config, log
        self.model_name = request.model_name
        self.image = request.image  # replaced by the digest-pinned reference in ``pin_image``
        self.existing = _list_replicas(client, self.model_name)
        self.plan = plan_slots([record for _, record in self.existing])
        self.previous = [(c, r) for c, r in self.existing if r.slot == self.plan.serving_slot]
        self.previous_image = self.previous[0][1].image if self.previous else None
        self.ports = slot_ports(self.plan.new_slot, config.base_port, config.replicas)
        self.gateway: Gateway | None = None
        self.gateway_image = ""
        self.gateway_touched = False
        self.gateway_details: dict[str, Any] = {}
        self.pulled = False
        self.started_at = 0.0
        self.new: list[tuple[Container, int]] = []
        self.checking: Container | None = None  # the candidate under health check, named when it fails

    # -- before any candidate starts: a failure leaves the host unchanged ------------------------------
    def fail_unchanged(self, reason: str) -> DeployFailed:
        return DeployFailed(
            DeployResult(
                ok=False,
                target=self.target,
                serving_image=self.previous_image,
                previous_image=self.previous_image,
                message=f"docker_host deploy of {self.request.image} for model {self.model_name!r} failed before any "
                f"new container started: {reason} "
                + _describe_serving(self.model_name, self.previous, self.config.service_host),
            )
        )

    def clear_interrupted_slot(self) -> None:
        """Remove what an interrupted deploy left in the slot we are about to use."""
        stale_ids = {record.container_id for record in self.plan.stale}
        if stale_ids:
            self.log(
                f"removing {len(stale_ids)} container(s) left in the {self.plan.new_slot} slot by an interrupted deploy"
            )
            _remove(
                [c for c, r in self.existing if r.container_id in stale_ids], self.config.stop_timeout_seconds, self.log
            )

    def check_ports_free(self) -> None:
        config = self.config
        busy = [port for port in self.ports if _port_answers(config.service_host, port)]
        if busy:
            raise self.fail_unchanged(
                f"port(s) {', '.join(map(str, busy))} on {config.service_host} already answer; another service "
                f"uses them. Choose a base_port whose blocks {config.base_port}.. and "
                f"{config.base_port + 100}.. are free."
            )

    def prepare_gateway(self, secrets: dict[str, str]) -> None:
        """The model's gateway (not switched yet) and its image, when the config enables one."""
        config = self.config
        if not config.gateway.enabled:
            return
        self.gateway = _gateway_for(self.client, self.model_name, config, secrets, self.log)
        if self.gateway.find() is None and _port_answers(public_host(config.gateway.bind_address), config.gateway_port):
            raise self.fail_unchanged(
                f"gateway port {config.gateway_port} already answers on this host and it is not this model's "
                f"gateway ({self.gateway.name}); choose gateway.port or base_port"
            )
        try:
            self.gateway_image = ensure_gateway_image(self.client, config.gateway, self.log)
        except GatewayError as error:
            raise self.fail_unchanged(str(error)) from error

    def pin_image(self, repository: str, tag: str) -> None:
        """Run exact bytes: a digest pin (what the deploy job passes) is used as ``repository@sha256:…``;
        a tag is resolved to its digest by the registry (through the engine) — a tag the registry does
        not know falls through to the pull, which says why."""
        if tag.startswith("sha256:"):
            self.image = f"{repository}@{tag}"
            return
        try:
            self.image = f"{repository}@{self.client.images.get_registry_data(self.request.image).id}"
        except (APIError, NotFound, RequestException) as error:
            self.log(f"cannot resolve {self.request.image} to a digest in its registry ({error}); using the tag")

    def ensure_image(self, repository: str, tag: str) -> None:
        """Pull the pinned image unless the engine has it."""
        try:
            self.client.images.get(self.image)
        except ImageNotFound:
            self.log(f"pulling {self.image}")
            try:
                name, _, reference = self.image.partition("@") if "@" in self.image else (repository, "", tag)
                self.client.images.pull(name, tag=reference)
                self.pulled = True
            except APIError as error:
                raise self.fail_unchanged(
                    f"pulling {self.image} failed (image pull error): {error.explanation or error}."
                ) from error

    # -- candidates: a failure from here on rolls back -------------------------------------------------
    def start_candidates(self, passed_env: dict[str, str]) -> None:
        """One container per port of the new slot, hardened exactly as the smoke test ran it."""
        config, request = self.config, self.request
        self.started_at = time.monotonic()
        for replica, port in enumerate(self.ports):
            container = self.client.containers.run(
                self.image,
                detach=True,
                name=container_name(self.model_name, self.plan.new_slot, replica),
                network_mode="host",
                environment={**passed_env, "PORT": str(port), "HOST": config.service_host},
                labels=container_labels(
                    self.model_name, request.model_version, self.plan.new_slot, port, replica, request.image
                ),
                restart_policy={"Name": "unless-stopped"},
                mem_limit=config.memory_limit,
                nano_cpus=int(config.cpus * 1e9) if config.cpus else None,
                **HARDENING.docker_run_kwargs(),
            )
            self.new.append((container, port))
            container.reload()
            weaker = hardening_problems(container.attrs)
            if weaker:
                raise RuntimeError(f"{container.name} does not run as the smoke test did: {'; '.join(weaker)}")
            self.log(f"started {container.name} ({self.image}) on {config.service_host}:{port}")

    def verify_candidates(self) -> None:
        """/health, /ready and the /predict smoke test on every candidate, within one deadline."""
        config = self.config
        deadline = self.started_at + config.health_timeout_seconds
        for container, port in self.new:
            self.checking = container
            verify_replica(
                _endpoint(config.service_host, port),
                self.request.sample_rows,
                deadline=deadline,
                poll_interval=config.health_poll_interval_seconds,
                request_timeout=config.request_timeout_seconds,
                container_gone=lambda container=container: _death_of(container),
            )
            self.log(f"{container.name} passed /health, /ready" + (", /predict" if self.request.sample_rows else ""))
        self.checking = None

    def switch_gateway(self) -> None:
        if self.gateway is None:
            return
        self.gateway_touched = True
        self.gateway_details = self.gateway.route_to(
            [Backend(c.name, self.config.service_host, port) for c, port in self.new],
            self.request.model_version,
            self.gateway_image,
        )

    def roll_back(self, error: Exception) -> DeployFailed:
        """Gateway back to the previous replicas, candidates removed; returns the error to raise."""
        failing = self.checking if isinstance(error, ReplicaCheckFailed) else None
        if self.gateway_touched:
            _restore_gateway(self.gateway, self.previous, self.config, self.gateway_image, self.log)
        return _roll_back(
            self.target,
            self.request,
            self.config,
            self.plan.new_slot,
            self.ports,
            self.new,
            failing,
            error,
            self.previous,
            self.log,
        )

    # -- after the switch ------------------------------------------------------------------------------
    def retire_previous(self) -> DeployResult:
        """Stop the old version's containers (the gateway has drained them) and report the new one."""
        config, request, gateway = self.config, self.request, self.gateway
        replica_endpoints = [_endpoint(config.service_host, port) for _, port in self.new]
        endpoints = [gateway.url] if gateway is not None else replica_endpoints
        left_behind = _remove([c for c, _ in self.previous], config.stop_timeout_seconds, self.log)
        replaced = (
            f"; replaced {self.previous_image} ({len(self.previous)} container(s) removed)" if self.previous else ""
        )
        message = (
            f"model {self.model_name!r} version {request.model_version} serving from {self.image} "
            f"in the {self.plan.new_slot} slot at {', '.join(endpoints)}"
            + (f" (replicas {', '.join(replica_endpoints)})" if gateway is not None else "")
            + replaced
        )
        self.log(message)
        return DeployResult(
            ok=True,
            target=self.target,
            serving_image=request.image,
            previous_image=self.previous_image,
            message=message,
            details={
                "endpoints": endpoints,
                "replica_endpoints": replica_endpoints,
                "gateway": self.gateway_details,
                "image_pinned": self.image,
                "slot": self.plan.new_slot,
                "ports": self.ports,
                "containers": [c.name for c, _ in self.new],
                "image_pulled": self.pulled,
                "previous_containers_removed": [r.name for _, r in self.previous if r.name not in left_behind],
                "previous_containers_left_behind": left_behind,
                "seconds_to_healthy": round(time.monotonic() - self.started_at, 2),
                "docker_host": config.docker_host,
            },
        )


@register_target
class DockerHostTarget(DeployTarget):
    """Blue/green deploy of a model-service image onto one Docker engine with host networking."""

    name = "docker_host"

    def deploy(self, request: DeployRequest, log: Callable[[str], None] = print) -> DeployResult:
        # Everything that can be wrong with the request is found before the host is touched.
        model_name = validate_model_name(request.model_name)
        repository, tag = split_image_reference(request.image)
        config = parse_deploy_config(request.config, model_name)
        passed_env = resolve_pass_env(config.pass_env, os.environ)
        gateway_secrets = resolve_gateway_secrets(config.gateway, os.environ) if config.gateway.enabled else {}

        try:
            client = _connect(config)
        except DockerException as error:
            raise DeployFailed(
                DeployResult(
                    ok=False,
                    target=self.name,
                    serving_image=None,
                    message=f"cannot reach the Docker engine at {config.docker_host}: {error}. Nothing was changed.",
                )
            ) from error
        try:
            return self._deploy(client, request, config, repository, tag, passed_env, gateway_secrets, log)
        finally:
            client.close()

    def _deploy(
        self,
        client: docker.DockerClient,
        request: DeployRequest,
        config: DockerHostDeployConfig,
        repository: str,
        tag: str,
        passed_env: dict[str, str],
        gateway_secrets: dict[str, str],
        log: Callable[[str], None],
    ) -> DeployResult:
        """The blue/green steps in order. Until a candidate starts, a failure leaves the host as it was;
        from then on any failure rolls back (candidates removed, gateway pointed back, old ones serving)."""
        rollout = _Rollout(self.name, client, request, config, log)
        rollout.clear_interrupted_slot()
        rollout.check_ports_free()
        rollout.prepare_gateway(gateway_secrets)
        rollout.pin_image(repository, tag)
        rollout.ensure_image(repository, tag)
        try:
            rollout.start_candidates(passed_env)
            rollout.verify_candidates()
            rollout.switch_gateway()
        except Exception as error:  # whatever went wrong, the new containers must go and the old keep serving
            raise rollout.roll_back(error) from error
        return rollout.retire_previous()

    def status(self, model_name: str, config: Mapping[str, Any] | None = None) -> DockerHostStatus:
        """What runs for ``model_name`` on the host, with a live /health probe of each running replica.

        ``config`` is the same mapping as ``DeployRequest.config`` (only ``docker_host``,
        ``service_host`` and ``request_timeout_seconds`` matter here).
        """
        settings = parse_deploy_config(config or {}, validate_model_name(model_name))
        client = _connect(settings)
        try:
            records = [record for _, record in _list_replicas(client, model_name)]
            gateway = Gateway(client, _gateway_spec(model_name, settings), settings.gateway, {}, lambda _: None)
            running = gateway.find()
            gateway_url = gateway.url if running is not None and running.status == "running" else None
        finally:
            client.close()
        plan = plan_slots(records)
        serving = [r for r in records if r.slot == plan.serving_slot]
        replicas = []
        for record in sorted(records, key=lambda r: (r.slot != plan.serving_slot, r.name)):
            endpoint = _endpoint(settings.service_host, record.port) if record.port is not None else None
            healthy = (
                probe("GET", f"{endpoint}/health", timeout=settings.request_timeout_seconds).ok
                if endpoint and record.state == "running"
                else None
            )
            replicas.append(
                ReplicaStatus(record.name, record.slot, record.version, record.image, record.state, endpoint, healthy)
            )
        return DockerHostStatus(
            model_name=model_name,
            serving_slot=plan.serving_slot,
            serving_image=serving[0].image if serving else None,
            serving_version=serving[0].version if serving else None,
            replicas=replicas,
            gateway_url=gateway_url,
        )

    def undeploy(
        self, model_name: str, config: Mapping[str, Any] | None = None, log: Callable[[str], None] = print
    ) -> list[str]:
        """Stop and remove every container this target runs for ``model_name``; returns their names."""
        settings = parse_deploy_config(config or {}, validate_model_name(model_name))
        client = _connect(settings)
        try:
            existing = [container for container, _ in _list_replicas(client, model_name)]
            gateway = Gateway(client, _gateway_spec(model_name, settings), settings.gateway, {}, log)
            if gateway.find() is not None:
                gateway.remove()
                log(f"removed gateway {gateway.name}")
            left_behind = _remove(existing, settings.stop_timeout_seconds, log)
        finally:
            client.close()
        removed = [c.name for c in existing if c.name not in left_behind]
        log(f"undeployed model {model_name!r}: removed {len(removed)} container(s)")
        if left_behind:
            raise RuntimeError(f"could not remove container(s) {', '.join(left_behind)} of model {model_name!r}")
        return removed
