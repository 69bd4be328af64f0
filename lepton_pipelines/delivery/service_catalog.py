"""The service catalog: every deployed model service, where it answers, what it runs, and whether it
was healthy when last probed — across every deploy target, in one table the UI shows.

Discovery asks the platforms themselves, never a side file that could disagree with them:

* **Docker host**: the containers the ``docker_host`` target labelled (``org.lepton.deploy.target``);
  model, version, image and port come from the labels, the bind address from the container's ``HOST``
  setting; the model's gateway container, when it runs, gives the stable client address.
* **Kubernetes**: the Services the deployer applied (``app.kubernetes.io/component=model-service``),
  their EndpointSlices (ready addresses) and the Deployment's image, through the API server; health is
  ``GET /health`` through the Service proxy, the path the deployer's smoke test uses.

Which targets to ask: env ``LEPTON_SERVICE_CATALOG_TARGETS`` (a JSON list, e.g.
``[{"target": "docker_host"}, {"target": "kubernetes", "namespace": "lepton-models"}]``), else the
targets ``models.yaml`` deploys to. A target that cannot be asked is reported in the asset's
metadata and fails the asset's run after the reachable targets were written: a partial catalog is
never presented as a complete one.

``service_catalog_sensor`` probes on every tick and requests a refresh run only when the catalog's
content (services, versions, endpoints, health) changed, or when the last refresh is older than
``LEPTON_SERVICE_CATALOG_MAX_AGE_SECONDS`` (default 3600): the catalog's "last probed" stays recent
without a run every minute.
"""

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import write_parquet_atomic

CATALOG_KEY = dg.AssetKey(["delivery", "service_catalog"])
CATALOG_GROUP = "delivery"
CATALOG_DIR = "_delivery"  # <lake>/_delivery/service_catalog.parquet (like governance's _catalog, _quality)
CATALOG_FILE = "service_catalog.parquet"
TARGETS_ENV = "LEPTON_SERVICE_CATALOG_TARGETS"
MAX_AGE_ENV = "LEPTON_SERVICE_CATALOG_MAX_AGE_SECONDS"
PROBE_TIMEOUT_SECONDS = 2.0

HEALTHY, DEGRADED, UNHEALTHY, STOPPED = "healthy", "degraded", "unhealthy", "stopped"
COLUMNS = [
    "target",
    "location",
    "model",
    "version",
    "image",
    "endpoint",
    "replica_endpoints",
    "health",
    "ready_replicas",
    "replicas",
    "detail",
    "probed_at",
]

# The docker_host target's labels (delivery/docker_host/slots.py and gateway.py): read here as plain
# strings so discovering services does not import the Docker target's deploy machinery.
LABEL_TARGET = "org.lepton.deploy.target"
LABEL_MODEL_NAME = "org.lepton.model.name"
LABEL_MODEL_VERSION = "org.lepton.model.version"
LABEL_IMAGE = "org.lepton.deploy.image"
LABEL_PORT = "org.lepton.deploy.port"
LABEL_ROLE = "org.lepton.deploy.role"
LABEL_GATEWAY_SPEC = "org.lepton.gateway.spec"
DOCKER_TARGET = "docker_host"
KUBERNETES_TARGET = "kubernetes"
K8S_SERVICE_LABELS = {"app.kubernetes.io/component": "model-service", "app.kubernetes.io/part-of": "lepton"}


class CatalogConfigError(ValueError):
    """LEPTON_SERVICE_CATALOG_TARGETS (or a model's deploy settings) cannot be used as given."""


@dataclass(frozen=True)
class CatalogTarget:
    """One place to look for model services."""

    target: str  # docker_host | kubernetes
    docker_host: str = "unix:///var/run/docker.sock"  # docker_host: the engine to ask
    namespace: str = "lepton-models"  # kubernetes: where the deployer puts model services
    options: dict[str, Any] = field(default_factory=dict)  # kubernetes: host, token_env_var, kubeconfig, context

    @property
    def location(self) -> str:
        if self.target == DOCKER_TARGET:
            return self.docker_host
        where = self.options.get("host") or self.options.get("context") or "in-cluster/kubeconfig"
        return f"{where} namespace {self.namespace}"

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class ServiceRecord:
    target: str
    location: str
    model: str
    version: str
    image: str
    endpoint: str  # the address clients use (gateway / Service), else the first replica's
    replica_endpoints: list[str]
    health: str  # healthy | degraded | unhealthy | stopped
    ready_replicas: int
    replicas: int
    detail: str
    probed_at: str  # ISO-8601 UTC of this probe

    def fingerprint(self) -> tuple:
        """What makes the catalog different for a reader (not the probe time)."""
        return (
            self.target,
            self.location,
            self.model,
            self.version,
            self.image,
            self.endpoint,
            tuple(self.replica_endpoints),
            self.health,
            self.ready_replicas,
            self.replicas,
        )


@dataclass
class Discovery:
    services: list[ServiceRecord]
    errors: dict[str, str]  # target location → why it could not be asked

    def fingerprint(self) -> str:
        content = sorted(s.fingerprint() for s in self.services), sorted(self.errors)
        return hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()[:16]


# --- configuration ------------------------------------------------------------------------------------
_TARGET_FIELDS = {
    DOCKER_TARGET: {"target", "docker_host"},
    KUBERNETES_TARGET: {"target", "namespace", "host", "token_env_var", "kubeconfig", "context"},
}


def parse_targets(raw: str, source: str = TARGETS_ENV) -> list[CatalogTarget]:
    """``[{"target": "docker_host", "docker_host": "unix:///…"}, {"target": "kubernetes", "namespace": …}]``."""
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CatalogConfigError(
            f"{source} is not JSON ({error.msg} at character {error.pos}): {raw[:200]!r}"
        ) from None
    if not isinstance(items, list):
        raise CatalogConfigError(f"{source} must be a JSON list of targets, got {type(items).__name__}")
    targets = []
    for index, item in enumerate(items):
        where = f"{source}[{index}]"
        if not isinstance(item, dict):
            raise CatalogConfigError(f'{where} must be an object like {{"target": "docker_host"}}, got {item!r}')
        kind = item.get("target")
        if kind not in _TARGET_FIELDS:
            raise CatalogConfigError(
                f"{where}: field 'target' is {kind!r}; allowed: {', '.join(sorted(_TARGET_FIELDS))}"
            )
        unknown = sorted(set(item) - _TARGET_FIELDS[kind])
        if unknown:
            raise CatalogConfigError(
                f"{where}: field(s) {', '.join(unknown)} are not settings of target {kind!r}; "
                f"allowed: {', '.join(sorted(_TARGET_FIELDS[kind]))}"
            )
        for name, value in item.items():
            if not isinstance(value, str) or not value:
                raise CatalogConfigError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
        if kind == DOCKER_TARGET:
            targets.append(CatalogTarget(DOCKER_TARGET, **{k: v for k, v in item.items() if k == "docker_host"}))
        else:
            options = {k: v for k, v in item.items() if k not in ("target", "namespace")}
            targets.append(
                CatalogTarget(KUBERNETES_TARGET, namespace=item.get("namespace", "lepton-models"), options=options)
            )
    return _unique(targets)


def targets_from_models(models: Iterable[Any]) -> list[CatalogTarget]:
    """The targets ``models.yaml`` deploys to (``deploy.target``, its config and options)."""
    targets = []
    for spec in models:
        deploy = spec.deploy
        if deploy.target == DOCKER_TARGET:
            host = deploy.config.get("docker_host") or "unix:///var/run/docker.sock"
            targets.append(CatalogTarget(DOCKER_TARGET, docker_host=host))
        elif not deploy.target_options.get("dry_run"):  # a dry-run target deploys nothing to look for
            options = {
                k: v
                for k, v in deploy.target_options.items()
                if k in ("host", "token_env_var", "kubeconfig", "context")
            }
            targets.append(
                CatalogTarget(
                    KUBERNETES_TARGET, namespace=deploy.config.get("namespace", "lepton-models"), options=options
                )
            )
    return _unique(targets)


def configured_targets(environ: dict[str, str] | None = None) -> list[CatalogTarget]:
    environ = dict(os.environ if environ is None else environ)
    raw = environ.get(TARGETS_ENV, "").strip()
    if raw:
        return parse_targets(raw)
    from lepton_pipelines.models.config import load_models

    return targets_from_models(load_models())


def _unique(targets: list[CatalogTarget]) -> list[CatalogTarget]:
    seen: dict[str, CatalogTarget] = {}
    for target in targets:
        seen.setdefault(target.key(), target)
    return list(seen.values())


# --- probing ------------------------------------------------------------------------------------------
# Services are probed where they listen (loopback, the host's network): never through an HTTP proxy
# that the process's environment may name for outside traffic.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_health(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> tuple[bool, str]:
    """(answered 2xx, what was seen) for ``GET <url>/health``."""
    try:
        with _DIRECT.open(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return 200 <= response.status < 300, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"no answer ({getattr(error, 'reason', error)})"


def overall_health(ready: int, total: int) -> str:
    if total == 0:
        return STOPPED
    if ready == total:
        return HEALTHY
    return DEGRADED if ready else UNHEALTHY


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- Docker host --------------------------------------------------------------------------------------
def _container_env(attrs: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in (attrs.get("Config", {}).get("Env") or []) if "=" in item)


def docker_services(
    containers: list[dict[str, Any]], location: str, probe: Callable[[str], tuple[bool, str]], probed_at: str
) -> list[ServiceRecord]:
    """One record per model and version from the containers' ``attrs`` (``docker inspect`` JSON)."""
    replicas: dict[tuple[str, str], list[dict[str, Any]]] = {}
    gateways: dict[str, str] = {}
    for attrs in containers:
        labels = attrs.get("Config", {}).get("Labels") or {}
        if labels.get(LABEL_TARGET) != DOCKER_TARGET:
            continue
        running = attrs.get("State", {}).get("Status") == "running"
        if labels.get(LABEL_ROLE) == "gateway":
            model = labels.get(f"{LABEL_MODEL_NAME}.gateway", "")
            spec = json.loads(labels.get(LABEL_GATEWAY_SPEC) or "{}")
            if running and model and spec.get("port"):
                host = spec.get("bind_address") or "127.0.0.1"
                host = "127.0.0.1" if host in ("0.0.0.0", "") else host
                gateways[model] = f"{'https' if spec.get('tls') else 'http'}://{host}:{spec['port']}"
            continue
        model, version = labels.get(LABEL_MODEL_NAME), labels.get(LABEL_MODEL_VERSION)
        if model and version:
            replicas.setdefault((model, version), []).append(attrs)
    records = []
    for (model, version), group in sorted(replicas.items()):
        endpoints, ready, notes = [], 0, []
        running = [a for a in group if a.get("State", {}).get("Status") == "running"]
        for attrs in sorted(group, key=lambda a: a.get("Name", "")):
            labels = attrs["Config"]["Labels"]
            name = attrs.get("Name", "").lstrip("/")
            host = _container_env(attrs).get("HOST") or "127.0.0.1"
            endpoint = f"http://{host}:{labels.get(LABEL_PORT)}"
            endpoints.append(endpoint)
            state = attrs.get("State", {}).get("Status")
            if state != "running":
                notes.append(f"{name}: {state}")
                continue
            ok, seen = probe(endpoint)
            ready += ok
            if not ok:
                notes.append(f"{name}: /health {seen}")
        image = next((a["Config"]["Labels"].get(LABEL_IMAGE) or a["Config"].get("Image", "") for a in group), "")
        records.append(
            ServiceRecord(
                target=DOCKER_TARGET,
                location=location,
                model=model,
                version=version,
                image=image,
                endpoint=gateways.get(model) or (endpoints[0] if endpoints else ""),
                replica_endpoints=endpoints,
                health=overall_health(ready, len(group)) if running else STOPPED,
                ready_replicas=ready,
                replicas=len(group),
                detail="; ".join(notes),
                probed_at=probed_at,
            )
        )
    return records


def discover_docker(
    target: CatalogTarget, probe: Callable[[str], tuple[bool, str]], probed_at: str
) -> list[ServiceRecord]:
    import docker

    client = docker.DockerClient(base_url=target.docker_host, timeout=30)
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL_TARGET}={DOCKER_TARGET}"})
        containers = [client.api.inspect_container(c["Id"]) for c in found]
    finally:
        client.close()
    return docker_services(containers, target.location, probe, probed_at)


# --- Kubernetes ---------------------------------------------------------------------------------------
def _ready_addresses(slices: list[dict[str, Any]]) -> tuple[list[str], int]:
    """(addresses of ready endpoints, number of endpoints) over a Service's EndpointSlices."""
    ready, total = [], 0
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            total += 1
            if (endpoint.get("conditions") or {}).get("ready", False):
                ready.extend(endpoint.get("addresses") or [])
    return ready, total


def kubernetes_record(
    service: dict[str, Any],
    slices: list[dict[str, Any]],
    deployment: dict[str, Any] | None,
    health: tuple[bool, str] | None,
    location: str,
    probed_at: str,
) -> ServiceRecord:
    meta = service["metadata"]
    labels = meta.get("labels") or {}
    port = next(
        (p["port"] for p in service.get("spec", {}).get("ports") or [] if p.get("name") == "http"),
        (service.get("spec", {}).get("ports") or [{"port": 8080}])[0]["port"],
    )
    ready, total = _ready_addresses(slices)
    ports = {p.get("name"): p.get("port") for s in slices for p in s.get("ports") or []}
    target_port = ports.get("http") or next(iter(ports.values()), None)
    image = ""
    if deployment is not None:
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        image = containers[0].get("image", "") if containers else ""
    notes = []
    if deployment is None:
        notes.append(f"Deployment {meta['name']} not found")
    if total and len(ready) < total:
        notes.append(f"{total - len(ready)} of {total} endpoints not ready")
    health_state = overall_health(len(ready), total)
    if health is not None and not health[0]:
        notes.append(f"/health through the Service: {health[1]}")
        health_state = UNHEALTHY if not ready else DEGRADED
    return ServiceRecord(
        target=KUBERNETES_TARGET,
        location=location,
        model=labels.get(LABEL_MODEL_NAME, meta["name"]),
        version=labels.get(LABEL_MODEL_VERSION, ""),
        image=image,
        endpoint=f"http://{meta['name']}.{meta['namespace']}.svc:{port}",
        replica_endpoints=[f"http://{address}:{target_port}" for address in ready] if target_port else ready,
        health=health_state,
        ready_replicas=len(ready),
        replicas=total,
        detail="; ".join(notes),
        probed_at=probed_at,
    )


def discover_kubernetes(target: CatalogTarget, probed_at: str, api_client: Any = None) -> list[ServiceRecord]:
    from lepton_pipelines.delivery.kubernetes.client import ApiRetry, ClusterClient, ClusterError
    from lepton_pipelines.delivery.kubernetes.target import api_client_for

    api = api_client or api_client_for(**target.options)
    cluster = ClusterClient(
        api, retry=ApiRetry(attempts=3, initial_delay_seconds=0.2, max_delay_seconds=1.0), log=lambda _: None
    )
    records = []
    for service in cluster.list_services(target.namespace, K8S_SERVICE_LABELS):
        name = service["metadata"]["name"]
        slices = cluster.list_endpoint_slices(target.namespace, name)
        deployment = cluster.get("Deployment", target.namespace, name)
        try:
            cluster.service_proxy_get(target.namespace, name, "health", timeout=PROBE_TIMEOUT_SECONDS)
            health: tuple[bool, str] = (True, "HTTP 200")
        except ClusterError as error:
            health = (False, str(error))
        records.append(kubernetes_record(service, slices, deployment, health, target.location, probed_at))
    return records


# --- the whole catalog --------------------------------------------------------------------------------
def discover(
    targets: list[CatalogTarget],
    *,
    probe: Callable[[str], tuple[bool, str]] = http_health,
    kubernetes_api: Callable[[CatalogTarget], Any] | None = None,
) -> Discovery:
    probed_at = now_iso()
    services: list[ServiceRecord] = []
    errors: dict[str, str] = {}
    for target in targets:
        try:
            if target.target == DOCKER_TARGET:
                services.extend(discover_docker(target, probe, probed_at))
            else:
                api = kubernetes_api(target) if kubernetes_api else None
                services.extend(discover_kubernetes(target, probed_at, api))
        except Exception as error:  # noqa: BLE001 — any failure of one target is reported, the others still count
            errors[f"{target.target} {target.location}"] = f"{type(error).__name__}: {error}"
    return Discovery(services=services, errors=errors)


def catalog_frame(services: list[ServiceRecord]) -> pd.DataFrame:
    rows = [asdict(s) for s in sorted(services, key=lambda s: (s.model, s.target, s.location, s.version))]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["replica_endpoints"] = frame["replica_endpoints"].map(lambda value: json.dumps(list(value)))
    return frame.astype({"ready_replicas": "int64", "replicas": "int64"})


def catalog_markdown(services: list[ServiceRecord], errors: dict[str, str]) -> str:
    lines = [
        "| model | version | target | endpoint | health | ready | image | probed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(services, key=lambda s: (s.model, s.target, s.version)):
        lines.append(
            f"| {s.model} | {s.version} | {s.target} | {s.endpoint} | {s.health} | "
            f"{s.ready_replicas}/{s.replicas} | `{s.image}` | {s.probed_at} |"
        )
    if not services:
        lines.append("| (no deployed model services found) | | | | | | | |")
    for where, why in sorted(errors.items()):
        lines.append(f"\n**Not asked: {where}** — {why}")
    return "\n".join(lines)


class ServiceCatalogError(Exception):
    """Some targets could not be asked; the catalog was written with what the others answered."""


@dg.asset(
    key=CATALOG_KEY,
    group_name=CATALOG_GROUP,
    kinds={"parquet"},
    description="Every deployed model service on every deploy target (Docker host, Kubernetes): endpoint, image, "
    "version and health as last probed. Refreshed by service_catalog_sensor.",
)
def service_catalog(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    targets = configured_targets()
    found = discover(targets)
    written = write_parquet_atomic(lake.get().path(CATALOG_DIR), catalog_frame(found.services), CATALOG_FILE)
    metadata = {
        "catalog": dg.MetadataValue.md(catalog_markdown(found.services, found.errors)),
        "services": len(found.services),
        "healthy": sum(s.health == HEALTHY for s in found.services),
        "targets": dg.MetadataValue.json(
            [
                {
                    "target": t.target,
                    "location": t.location,
                    "status": found.errors.get(f"{t.target} {t.location}", "ok"),
                }
                for t in targets
            ]
        ),
        "fingerprint": found.fingerprint(),
        "path": dg.MetadataValue.path(str(written.path)),
        "dagster/row_count": len(found.services),
    }
    if found.errors:
        context.log_event(dg.AssetObservation(asset_key=CATALOG_KEY, metadata=metadata))
        raise ServiceCatalogError(
            "the catalog was written without these targets, which could not be asked: "
            + "; ".join(f"{where}: {why}" for where, why in sorted(found.errors.items()))
        )
    return dg.MaterializeResult(metadata=metadata)


def parse_sensor_cursor(cursor: str | None) -> dict[str, Any]:
    try:
        value = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def refresh_due(previous: dict[str, Any], fingerprint: str, now: float, max_age: float) -> str | None:
    """Why a refresh run is needed, or None."""
    if previous.get("fingerprint") != fingerprint:
        return "the deployed services or their health changed" if previous else "no catalog yet"
    if now - float(previous.get("refreshed_at", 0)) >= max_age:
        return f"the catalog is older than {max_age:.0f} s"
    return None


@dg.sensor(
    name="service_catalog_sensor",
    target=[service_catalog],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Probes every deploy target each minute; refreshes delivery/service_catalog when a service, "
    f"version, endpoint or health changed, or the catalog is older than ${MAX_AGE_ENV} (default 3600 s).",
)
def service_catalog_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    try:
        targets = configured_targets()
    except CatalogConfigError as error:
        return dg.SkipReason(str(error))
    found = discover(targets)
    fingerprint, now = found.fingerprint(), time.time()
    previous = parse_sensor_cursor(context.cursor)
    reason = refresh_due(previous, fingerprint, now, float(os.environ.get(MAX_AGE_ENV, "3600")))
    if reason is None:
        return dg.SkipReason(f"{len(found.services)} service(s), unchanged since the last refresh")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"service-catalog-{fingerprint}-{int(now)}", tags={"lepton/catalog-reason": reason})
        ],
        cursor=json.dumps({"fingerprint": fingerprint, "refreshed_at": now}),
    )
