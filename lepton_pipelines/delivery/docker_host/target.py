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
from dataclasses import dataclass
from typing import Any, Callable, Mapping

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


def _describe_serving(
    model_name: str, previous: list[tuple[Container, ReplicaRecord]], service_host: str
) -> str:
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
    client: docker.DockerClient, model_name: str, config: DockerHostDeployConfig, secrets: dict[str, str],
    log: Callable[[str], None],
) -> Gateway:
    return Gateway(client, _gateway_spec(model_name, config), config.gateway, secrets, log)


def _restore_gateway(
    gateway: Gateway | None, previous: list[tuple[Container, ReplicaRecord]], config: DockerHostDeployConfig,
    gateway_image: str, log: Callable[[str], None],
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
        model_name = request.model_name
        # A digest pin (what the deploy job passes) is used as ``repository@sha256:…``: exact bytes.
        image = f"{repository}@{tag}" if tag.startswith("sha256:") else request.image
        existing = _list_replicas(client, model_name)
        plan = plan_slots([record for _, record in existing])
        previous = [(c, r) for c, r in existing if r.slot == plan.serving_slot]
        previous_image = previous[0][1].image if previous else None
        stale_ids = {record.container_id for record in plan.stale}
        if stale_ids:
            log(f"removing {len(stale_ids)} container(s) left in the {plan.new_slot} slot by an interrupted deploy")
            _remove([c for c, r in existing if r.container_id in stale_ids], config.stop_timeout_seconds, log)

        def fail_unchanged(reason: str) -> DeployFailed:
            return DeployFailed(
                DeployResult(
                    ok=False,
                    target=self.name,
                    serving_image=previous_image,
                    previous_image=previous_image,
                    message=f"docker_host deploy of {request.image} for model {model_name!r} failed before any "
                    f"new container started: {reason} "
                    + _describe_serving(model_name, previous, config.service_host),
                )
            )

        ports = slot_ports(plan.new_slot, config.base_port, config.replicas)
        busy = [port for port in ports if _port_answers(config.service_host, port)]
        if busy:
            raise fail_unchanged(
                f"port(s) {', '.join(map(str, busy))} on {config.service_host} already answer; another service "
                f"uses them. Choose a base_port whose blocks {config.base_port}.. and "
                f"{config.base_port + 100}.. are free."
            )

        gateway: Gateway | None = None
        gateway_image = ""
        if config.gateway.enabled:
            gateway = _gateway_for(client, model_name, config, gateway_secrets, log)
            if gateway.find() is None and _port_answers(public_host(config.gateway.bind_address), config.gateway_port):
                raise fail_unchanged(
                    f"gateway port {config.gateway_port} already answers on this host and it is not this model's "
                    f"gateway ({gateway.name}); choose gateway.port or base_port"
                )
            try:
                gateway_image = ensure_gateway_image(client, config.gateway, log)
            except GatewayError as error:
                raise fail_unchanged(str(error)) from error

        # Pin by digest: ask the registry (through the engine) which image the tag names, and run
        # exactly that; a tag the registry does not know falls through to the pull, which says why.
        if not tag.startswith("sha256:"):
            try:
                image = f"{repository}@{client.images.get_registry_data(request.image).id}"
            except (APIError, NotFound, RequestException) as error:
                log(f"cannot resolve {request.image} to a digest in its registry ({error}); using the tag")
        pulled = False
        try:
            client.images.get(image)
        except ImageNotFound:
            log(f"pulling {image}")
            try:
                name, _, reference = image.partition("@") if "@" in image else (repository, "", tag)
                client.images.pull(name, tag=reference)
                pulled = True
            except APIError as error:
                raise fail_unchanged(f"pulling {image} failed (image pull error): {error.explanation or error}.") from error

        started_at = time.monotonic()
        new: list[tuple[Container, int]] = []
        checking: Container | None = None
        gateway_touched = False
        gateway_details: dict[str, Any] = {}
        try:
            for replica, port in enumerate(ports):
                container = client.containers.run(
                    image,
                    detach=True,
                    name=container_name(model_name, plan.new_slot, replica),
                    network_mode="host",
                    environment={**passed_env, "PORT": str(port), "HOST": config.service_host},
                    labels=container_labels(model_name, request.model_version, plan.new_slot, port, replica, request.image),
                    restart_policy={"Name": "unless-stopped"},
                    mem_limit=config.memory_limit,
                    nano_cpus=int(config.cpus * 1e9) if config.cpus else None,
                    **HARDENING.docker_run_kwargs(),
                )
                new.append((container, port))
                container.reload()
                weaker = hardening_problems(container.attrs)
                if weaker:
                    raise RuntimeError(f"{container.name} does not run as the smoke test did: {'; '.join(weaker)}")
                log(f"started {container.name} ({image}) on {config.service_host}:{port}")
            deadline = started_at + config.health_timeout_seconds
            for container, port in new:
                checking = container
                verify_replica(
                    _endpoint(config.service_host, port),
                    request.sample_rows,
                    deadline=deadline,
                    poll_interval=config.health_poll_interval_seconds,
                    request_timeout=config.request_timeout_seconds,
                    container_gone=lambda container=container: _death_of(container),
                )
                log(f"{container.name} passed /health, /ready" + (", /predict" if request.sample_rows else ""))
            checking = None
            if gateway is not None:
                gateway_touched = True
                gateway_details = gateway.route_to(
                    [Backend(c.name, config.service_host, port) for c, port in new], request.model_version, gateway_image
                )
        except Exception as error:  # whatever went wrong, the new containers must go and the old keep serving
            failing = checking if isinstance(error, ReplicaCheckFailed) else None
            if gateway_touched:
                _restore_gateway(gateway, previous, config, gateway_image, log)
            raise self._roll_back(request, config, plan.new_slot, ports, new, failing, error, previous, log) from error

        replica_endpoints = [_endpoint(config.service_host, port) for _, port in new]
        endpoints = [gateway.url] if gateway is not None else replica_endpoints
        left_behind = _remove([c for c, _ in previous], config.stop_timeout_seconds, log)
        replaced = f"; replaced {previous_image} ({len(previous)} container(s) removed)" if previous else ""
        message = (
            f"model {model_name!r} version {request.model_version} serving from {image} "
            f"in the {plan.new_slot} slot at {', '.join(endpoints)}"
            + (f" (replicas {', '.join(replica_endpoints)})" if gateway is not None else "")
            + replaced
        )
        log(message)
        return DeployResult(
            ok=True,
            target=self.name,
            serving_image=request.image,
            previous_image=previous_image,
            message=message,
            details={
                "endpoints": endpoints,
                "replica_endpoints": replica_endpoints,
                "gateway": gateway_details,
                "image_pinned": image,
                "slot": plan.new_slot,
                "ports": ports,
                "containers": [c.name for c, _ in new],
                "image_pulled": pulled,
                "previous_containers_removed": [r.name for _, r in previous if r.name not in left_behind],
                "previous_containers_left_behind": left_behind,
                "seconds_to_healthy": round(time.monotonic() - started_at, 2),
                "docker_host": config.docker_host,
            },
        )

    def _roll_back(
        self,
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
                target=self.name,
                serving_image=previous_image,
                previous_image=previous_image,
                rolled_back=True,
                message=message,
                details={
                    "failed_check": getattr(error, "check", "gateway" if isinstance(error, GatewayError) else "container start"),
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
