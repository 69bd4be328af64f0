"""A small Kubernetes API server double speaking the real REST paths over HTTP on 127.0.0.1.

The deployer uses the official ``kubernetes`` client against it unchanged. It stores what is
applied, bumps ``metadata.generation`` on spec changes, plays a rollout forward one step per status
read, answers the Service proxy as the ready pods of the matching Deployments would, can enforce an
RBAC Role the way the API server does (server-side apply that creates also needs ``create``), and
injects errors (409, 403, 429, 5xx) on chosen requests.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class Injection:
    method: str
    path_contains: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Scenario:
    """How the simulated pods behave, by image."""

    rollout_polls: int = 2  # status reads until a rollout completes
    stuck_images: set[str] = field(default_factory=set)  # rollout ends in ProgressDeadlineExceeded
    unhealthy_images: set[str] = field(default_factory=set)  # /health answers 500
    failing_predict_images: set[str] = field(default_factory=set)  # /predict answers 500
    # Terminal pod states: the rollout never completes, the pods say why.
    pull_error_images: set[str] = field(default_factory=set)  # waiting: ImagePullBackOff
    crashloop_images: set[str] = field(default_factory=set)  # waiting: CrashLoopBackOff, restarts
    load_failed_images: set[str] = field(default_factory=set)  # running, not ready, /ready says failed

    def terminal(self, image: str) -> bool:
        return image in self.pull_error_images | self.crashloop_images | self.load_failed_images


@dataclass
class _Rollout:
    polls: int = 0
    complete: bool = False


def _parse(path: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(group, namespace, resource, name, rest) for namespaced API paths."""
    parts = [unquote(part) for part in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, parts = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, parts = parts[1], parts[3:]
    else:
        return None
    if len(parts) < 3 or parts[0] != "namespaces":
        return None
    namespace, resource = parts[1], parts[2]
    name = parts[3] if len(parts) > 3 else None
    rest = "/".join(parts[4:]) if len(parts) > 4 else None
    return group, namespace, resource, name, rest


class FakeKubernetes:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.injections: list[Injection] = []
        self.scenario = Scenario()
        self.role_rules: list[dict[str, Any]] | None = None
        self._rollouts: dict[str, _Rollout] = {}
        self._ready_image: dict[str, str] = {}  # deployment path → image of its ready pods
        self._rolled_out_order: list[str] = []
        self._resource_version = 100
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- test controls -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, method: str, path_contains: str, status: int, times: int = 1, **headers: str) -> None:
        self.injections.append(Injection(method, path_contains, status, times, headers))

    def enforce_role(self, role: dict[str, Any]) -> None:
        self.role_rules = role["rules"]

    def seed_deployment(self, manifest: dict[str, Any]) -> None:
        """An already rolled-out Deployment, as if a previous deploy had succeeded."""
        path = self.path_of(manifest)
        self._store(path, manifest, "seed")
        self._ready_image[path] = _image(manifest)
        self._rolled_out_order.append(path)
        self._rollouts[path] = _Rollout(complete=True)
        self.objects[path]["status"] = self._complete_status(self.objects[path])

    @staticmethod
    def path_of(manifest: dict[str, Any]) -> str:
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        plural = {
            "Deployment": "deployments",
            "Service": "services",
            "HorizontalPodAutoscaler": "horizontalpodautoscalers",
            "Ingress": "ingresses",
            "NetworkPolicy": "networkpolicies",
        }[kind]
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        meta = manifest["metadata"]
        return f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")

    def requests_matching(self, method: str, path_contains: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    # --- API semantics -------------------------------------------------------------------------
    def _store(self, path: str, body: dict[str, Any], manager: str) -> tuple[dict[str, Any], bool]:
        existing = self.objects.get(path)
        stored = copy.deepcopy(body)
        meta = stored.setdefault("metadata", {})
        if stored.get("kind") == "Deployment" and "replicas" not in stored["spec"]:
            # A field the applier does not send keeps its live value (the HPA owns it), else the default.
            stored["spec"]["replicas"] = (existing or {}).get("spec", {}).get("replicas", 1)
        self._resource_version += 1
        meta["resourceVersion"] = str(self._resource_version)
        meta["managedFields"] = [{"manager": manager, "operation": "Apply"}]
        if existing is None:
            meta["uid"] = f"uid-{self._resource_version}"
            meta["generation"] = 1
        else:
            meta["uid"] = existing["metadata"]["uid"]
            meta["generation"] = existing["metadata"]["generation"] + (stored.get("spec") != existing.get("spec"))
            stored["status"] = existing.get("status", {})
        if stored.get("kind") == "Deployment" and meta["generation"] != (existing or {}).get("metadata", {}).get(
            "generation"
        ):
            self._rollouts[path] = _Rollout()
        self.objects[path] = stored
        return stored, existing is None

    def _complete_status(self, deployment: dict[str, Any]) -> dict[str, Any]:
        replicas = deployment["spec"]["replicas"]
        status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
        }
        if replicas:  # the API server omits zero counts
            status.update(readyReplicas=replicas, availableReplicas=replicas)
        return status

    def _advance_rollout(self, path: str) -> None:
        deployment, rollout = self.objects[path], self._rollouts.get(path)
        if rollout is None or rollout.complete:
            return
        rollout.polls += 1
        meta, image = deployment["metadata"], _image(deployment)
        old = deployment.get("status", {})
        if rollout.polls == 1:
            return  # the controller has not observed the new generation yet
        if image in self.scenario.stuck_images:
            deployment["status"] = {
                **old,
                "observedGeneration": meta["generation"],
                "updatedReplicas": 1,
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": f'ReplicaSet "{meta["name"]}-new" has timed out progressing.',
                    }
                ],
            }
            return
        if rollout.polls < self.scenario.rollout_polls or self.scenario.terminal(image):
            deployment["status"] = {**old, "observedGeneration": meta["generation"], "updatedReplicas": 1}
            return
        deployment["status"] = self._complete_status(deployment)
        rollout.complete = True
        self._ready_image[path] = image
        if path in self._rolled_out_order:
            self._rolled_out_order.remove(path)
        self._rolled_out_order.append(path)

    def _proxy(self, method: str, namespace: str, service_ref: str, rest: str, body: Any) -> tuple[int, Any]:
        service_name = service_ref.split(":", 1)[0]
        service = self.objects.get(f"/api/v1/namespaces/{namespace}/services/{service_name}")
        if service is None:
            return 404, _status(404, f'services "{service_name}" not found')
        selector = service["spec"]["selector"]
        serving = [
            path
            for path in reversed(self._rolled_out_order)
            if path in self.objects
            and path.startswith(f"/apis/apps/v1/namespaces/{namespace}/deployments/")
            and self.objects[path]["spec"].get("replicas", 1) > 0
            and selector.items() <= self.objects[path]["spec"]["template"]["metadata"]["labels"].items()
        ]
        if not serving:
            return 503, _status(503, f'no endpoints available for service "{service_name}"')
        images = [self._ready_image[path] for path in serving]
        newest = self.objects[serving[0]]["spec"]["template"]["metadata"]["labels"]
        if rest == "health" and method == "GET":
            if any(image in self.scenario.unhealthy_images for image in images):
                return 500, {"status": "unhealthy"}
            return 200, {"status": "ok"}
        if rest == "predict" and method == "POST":
            if any(image in self.scenario.failing_predict_images for image in images):
                return 500, {"error": "model failed to score"}
            rows = body["rows"]
            return 200, {
                "model": newest["org.lepton.model.name"],
                "version": newest["org.lepton.model.version"],
                "predictions": [0.5 for _ in rows],
            }
        return 404, {"error": f"no route {method} /{rest}"}

    def _pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods of the Deployments whose template labels match ``selector``, with container states
        derived from the scenario (as the kubelet would report them)."""
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        pods = []
        for path, deployment in self.objects.items():
            if not path.startswith(f"/apis/apps/v1/namespaces/{namespace}/deployments/"):
                continue
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            if not wanted.items() <= labels.items():
                continue
            image = _image(deployment)
            for index in range(max(deployment["spec"].get("replicas", 1), 1)):
                pods.append(
                    {
                        "metadata": {"name": f"{deployment['metadata']['name']}-pod-{index}", "labels": labels},
                        "status": {"containerStatuses": [self._container_status(image)]},
                    }
                )
        return pods

    def _services(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        prefix = f"/api/v1/namespaces/{namespace}/services/"
        return [
            copy.deepcopy(o)
            for p, o in sorted(self.objects.items())
            if p.startswith(prefix) and wanted.items() <= (o["metadata"].get("labels") or {}).items()
        ]

    def _endpoint_slices(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """What the EndpointSlice controller would publish for a Service (``kubernetes.io/service-name=…``):
        one endpoint per pod of the rolled-out Deployments its selector matches, ready as the kubelet's
        readiness probe would say. Addresses are from TEST-NET-1 (192.0.2.0/24): data only, never dialled."""
        service_name = dict(part.split("=", 1) for part in selector.split(",") if "=" in part).get(
            "kubernetes.io/service-name"
        )
        service = self.objects.get(f"/api/v1/namespaces/{namespace}/services/{service_name}")
        if service is None:
            return []
        endpoints = []
        for pod in self._pods(namespace, ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())):
            status = pod["status"]["containerStatuses"][0]
            deployment_path = (
                f"/apis/apps/v1/namespaces/{namespace}/deployments/{pod['metadata']['name'].rsplit('-pod-', 1)[0]}"
            )
            rolled_out = self._ready_image.get(deployment_path) == status["image"]
            ready = bool(status["ready"]) and rolled_out and status["image"] not in self.scenario.unhealthy_images
            endpoints.append(
                {
                    "addresses": [f"192.0.2.{len(endpoints) + 10}"],
                    "conditions": {"ready": ready},
                    "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": namespace},
                }
            )
        return [
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {
                    "name": f"{service_name}-abcde",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": service_name},
                },
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints,
            }
        ]

    def _container_status(self, image: str) -> dict[str, Any]:
        if image in self.scenario.pull_error_images:
            return {
                "name": "model",
                "ready": False,
                "restartCount": 0,
                "image": image,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
            }
        if image in self.scenario.crashloop_images:
            return {
                "name": "model",
                "ready": False,
                "restartCount": 4,
                "image": image,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container=model",
                    }
                },
            }
        ready = image not in self.scenario.load_failed_images
        return {
            "name": "model",
            "ready": ready,
            "restartCount": 0,
            "image": image,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        }

    def _pod_ready_answer(self, namespace: str, pod: str) -> tuple[int, Any]:
        deployment_name = pod.split(":", 1)[0].rsplit("-pod-", 1)[0]
        deployment = self.objects.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment_name}")
        if deployment is None:
            return 404, _status(404, f'pods "{pod}" not found')
        if _image(deployment) in self.scenario.load_failed_images:
            return 503, {"status": "failed", "error": "model.joblib: invalid load key, 'x'"}
        return 200, {"status": "ready"}

    def _authorized(self, verb: str, group: str, resource: str) -> bool:
        if self.role_rules is None:
            return True
        return any(
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            for rule in self.role_rules
        )

    def handle(self, method: str, raw_path: str, content_type: str, raw_body: bytes) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(raw_path)
        body = json.loads(raw_body) if raw_body else None
        with self._lock:
            self.requests.append(
                RecordedRequest(method, unquote(split.path), parse_qs(split.query), content_type, body)
            )
            for injection in self.injections:
                if injection.times > 0 and injection.method == method and injection.path_contains in split.path:
                    injection.times -= 1
                    return injection.status, _status(injection.status, "injected by the test"), injection.headers
            parsed = _parse(split.path)
            if parsed is not None and parsed[2] == "pods" and method == "GET":
                namespace, name, rest = parsed[1], parsed[3], parsed[4]
                if name is None:
                    if not self._authorized("list", "", "pods"):
                        return 403, _forbidden("list", "pods", "", namespace), {}
                    selector = parse_qs(split.query).get("labelSelector", [""])[0]
                    return 200, {"kind": "PodList", "apiVersion": "v1", "items": self._pods(namespace, selector)}, {}
                if rest == "proxy/ready":
                    if not self._authorized("get", "", "pods/proxy"):
                        return 403, _forbidden("get", "pods/proxy", "", namespace), {}
                    status, answer = self._pod_ready_answer(namespace, name)
                    return status, answer, {}
            if (
                parsed is not None
                and parsed[3] is None
                and method == "GET"
                and (parsed[0], parsed[2]) in (("", "services"), ("discovery.k8s.io", "endpointslices"))
            ):
                group, namespace, resource = parsed[0], parsed[1], parsed[2]
                if not self._authorized("list", group, resource):
                    return 403, _forbidden("list", resource, group, namespace), {}
                selector = parse_qs(split.query).get("labelSelector", [""])[0]
                items = (
                    self._services(namespace, selector)
                    if resource == "services"
                    else self._endpoint_slices(namespace, selector)
                )
                return 200, {"kind": "List", "apiVersion": "v1", "items": items}, {}
            if parsed is None or parsed[3] is None:
                return 404, _status(404, f"the fake serves no {split.path}"), {}
            group, namespace, resource, name, rest = parsed
            if resource == "services" and rest is not None and rest.startswith("proxy"):
                verb = "get" if method == "GET" else "create"
                if not self._authorized(verb, "", "services/proxy"):
                    return 403, _forbidden(verb, "services/proxy", "", namespace), {}
                status, answer = self._proxy(method, namespace, name, rest.removeprefix("proxy/"), body)
                return status, answer, {}
            path = split.path
            verb = {"GET": "get", "PATCH": "patch", "DELETE": "delete"}.get(method)
            if verb is None:
                return 405, _status(405, f"{method} not supported by the fake"), {}
            if not self._authorized(verb, group, resource):
                return 403, _forbidden(verb, resource, group, namespace), {}
            if method == "GET":
                if path not in self.objects:
                    return 404, _status(404, f'{resource} "{name}" not found'), {}
                if resource == "deployments":
                    self._advance_rollout(path)
                return 200, self.objects[path], {}
            if method == "DELETE":
                if self.objects.pop(path, None) is None:
                    return 404, _status(404, f'{resource} "{name}" not found'), {}
                self._rollouts.pop(path, None)
                self._ready_image.pop(path, None)
                if path in self._rolled_out_order:
                    self._rolled_out_order.remove(path)
                return 200, _status(200, "deleted"), {}
            if content_type != "application/apply-patch+yaml":
                return 415, _status(415, f"the fake only implements server-side apply, got {content_type}"), {}
            if path not in self.objects and not self._authorized("create", group, resource):
                return 403, _forbidden("create", resource, group, namespace), {}
            manager = parse_qs(split.query).get("fieldManager", ["?"])[0]
            stored, created = self._store(path, body, manager)
            return (201 if created else 200), stored, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").split(";")[0]
                status, answer, headers = fake.handle(self.command, self.path, content_type, raw)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _image(deployment: dict[str, Any]) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _forbidden(verb: str, resource: str, group: str, namespace: str) -> dict[str, Any]:
    qualified = f'"{resource}" in API group "{group}"'
    return _status(
        403,
        f'{resource} is forbidden: User "system:serviceaccount:dagster:lepton-deployer" cannot {verb} '
        f'resource {qualified} in the namespace "{namespace}"',
    )
