"""Apply → wait for rollout → smoke-test → (on any failure) roll back, for one model service.

The order matters: a canary (if enabled) must be healthy before the main Deployment changes, the
main Deployment must be rolled out and answer ``/health`` and ``/predict`` before the Ingress
exposes it, and every failure ends with a known serving state that the error message states.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

from lepton_pipelines.delivery.targets import DeployFailed, DeployRequest, DeployResult

from .client import ClusterClient, ClusterError, ClusterForbidden
from .config import DeployConfig
from .manifests import (
    CANARY,
    CONTAINER_PORT,
    MODEL_VERSION_LABEL,
    TRACK_LABEL,
    canary_name,
    resource_name,
)
from .rollout import rollout_state, terminal_pod_problem

TARGET_NAME = "kubernetes"


class DeployStepFailed(Exception):
    """One step (rollout, smoke test) failed; the deployer rolls back and reports it."""


def predict_request_body(sample_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The model service's documented /predict body."""
    return {"rows": sample_rows}


def deployment_image(deployment: dict[str, Any]) -> str | None:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return containers[0].get("image") if containers else None


def rollback_manifest(failed: dict[str, Any], previous: dict[str, Any], reason: str) -> dict[str, Any]:
    """The applied Deployment with the previous pod template restored — image and everything the
    failed config may have changed with it (limits, probes), since either could be the cause."""
    manifest = copy.deepcopy(failed)
    manifest["spec"]["template"] = copy.deepcopy(previous["spec"]["template"])
    previous_version = previous.get("metadata", {}).get("labels", {}).get(MODEL_VERSION_LABEL)
    labels = manifest["metadata"]["labels"]
    for key in (MODEL_VERSION_LABEL, "app.kubernetes.io/version"):
        if previous_version:
            labels[key] = previous_version
        else:
            labels.pop(key, None)
    manifest["metadata"]["annotations"] = {
        **manifest["metadata"].get("annotations", {}),
        "kubernetes.io/change-cause": reason,
    }
    return manifest


class KubernetesDeployer:
    def __init__(
        self,
        cluster: ClusterClient,
        *,
        poll_interval_seconds: float = 2.0,
        smoke_test_timeout_seconds: float = 10.0,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._cluster = cluster
        self._poll_interval = poll_interval_seconds
        self._smoke_timeout = smoke_test_timeout_seconds
        self._log = log
        self._sleep = sleep
        self._clock = clock
        self._pods_forbidden = False

    def deploy(self, request: DeployRequest, config: DeployConfig, manifests: list[dict[str, Any]]) -> DeployResult:
        namespace, name = config.namespace, resource_name(request.model_name)
        try:
            previous = self._cluster.get("Deployment", namespace, name)
        except ClusterError as error:
            raise DeployFailed(
                DeployResult(
                    ok=False,
                    target=TARGET_NAME,
                    serving_image=None,
                    message=f"Deploy of {request.image} to {namespace} failed before any change: could not read "
                    f"Deployment {namespace}/{name}: {error}. Nothing was changed.",
                )
            ) from None
        previous_image = deployment_image(previous) if previous else None
        self._log(f"currently serving in {namespace}/{name}: {previous_image or 'nothing (first deploy)'}")

        touched: list[str] = []  # Deployments this call may have changed, for the rollback
        details: dict[str, Any] = {"namespace": namespace, "applied": [], "rollout_seconds": {}, "smoke_tests": []}
        try:
            for manifest in manifests:
                self._apply(manifest, request, config, touched, details)
            if config.canary.enabled:
                self._cluster.delete("Deployment", namespace, canary_name(request.model_name))
                self._log(f"promoted: removed canary Deployment {namespace}/{canary_name(request.model_name)}")
        except (ClusterError, DeployStepFailed) as failure:
            result = self._roll_back(request, config, manifests, previous, touched, str(failure))
            result.details = {**details, **result.details}
            raise DeployFailed(result) from None

        return DeployResult(
            ok=True,
            target=TARGET_NAME,
            serving_image=request.image,
            previous_image=previous_image,
            message=f"{request.image} is serving in {namespace}/{name}"
            + (f" (replaced {previous_image})" if previous_image and previous_image != request.image else ""),
            details=details,
        )

    def _apply(
        self,
        manifest: dict[str, Any],
        request: DeployRequest,
        config: DeployConfig,
        touched: list[str],
        details: dict[str, Any],
    ) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        if kind == "Deployment":
            touched.append(name)  # before the call: a failed or timed-out PATCH may still have landed
        self._cluster.apply(manifest)
        details["applied"].append(f"{kind}/{name}")
        self._log(f"applied {kind} {namespace}/{name}")
        if kind != "Deployment":
            return
        details["rollout_seconds"][name] = self._wait_for_rollout(manifest, config.rollout.timeout_seconds)
        is_canary = manifest["metadata"]["labels"].get(TRACK_LABEL) == CANARY
        details["smoke_tests"].append(self._smoke_test(manifest, request.sample_rows, is_canary))

    def _wait_for_rollout(self, manifest: dict[str, Any], timeout: float) -> float:
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        started = self._clock()
        last_message = ""
        while True:
            live = self._cluster.get("Deployment", namespace, name)
            if live is None:
                raise DeployStepFailed(f"Deployment {namespace}/{name} disappeared during its rollout")
            state = rollout_state(live)
            if state.message != last_message:
                self._log(f"rollout {namespace}/{name}: {state.message}")
                last_message = state.message
            if state.done:
                return round(self._clock() - started, 3)
            if state.failed:
                raise DeployStepFailed(f"rollout of Deployment {namespace}/{name} failed: {state.message}")
            terminal = self._terminal_state(manifest)
            if terminal:
                raise DeployStepFailed(
                    f"rollout of Deployment {namespace}/{name} cannot succeed: {terminal}; not waiting for the "
                    "rollout timeout"
                )
            if self._clock() - started >= timeout:
                raise DeployStepFailed(
                    f"rollout of Deployment {namespace}/{name} did not finish within {timeout:g}s: {state.message}"
                )
            self._sleep(self._poll_interval)

    def _terminal_state(self, manifest: dict[str, Any]) -> str | None:
        """A pod of the new version that can never become ready: image pull error, crash loop, or a
        model service whose /ready says ``"status": "failed"`` (asked through the pod proxy)."""
        namespace = manifest["metadata"]["namespace"]
        labels = dict(manifest["spec"]["selector"]["matchLabels"])
        version = manifest["spec"]["template"]["metadata"]["labels"].get(MODEL_VERSION_LABEL)
        if version:
            labels[MODEL_VERSION_LABEL] = version
        if self._pods_forbidden:
            return None
        try:
            pods = self._cluster.list_pods(namespace, labels)
        except ClusterForbidden as error:
            # An older Role without "list pods": keep deploying, only without the fast verdict.
            self._log(f"cannot read pod states, terminal failures will surface at the rollout timeout: {error}")
            self._pods_forbidden = True
            return None
        problem = terminal_pod_problem(pods)
        if problem:
            return problem
        for pod in pods:
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if not statuses or not all((s.get("state") or {}).get("running") for s in statuses):
                continue
            if all(s.get("ready") for s in statuses):
                continue
            name = pod["metadata"]["name"]
            status, body = self._cluster.pod_proxy_get(namespace, name, CONTAINER_PORT, "ready", self._smoke_timeout)
            try:
                answer = json.loads(body) if status == 503 else {}
            except ValueError:
                answer = {}
            if isinstance(answer, dict) and answer.get("status") == "failed":
                return f"pod {name}: model failed to load: {answer.get('error') or 'no reason given'} (GET /ready)"
        return None

    def _smoke_test(self, deployment: dict[str, Any], rows: list[dict[str, Any]], is_canary: bool) -> dict[str, Any]:
        """GET /health and POST /predict through the Service via the API server's service proxy —
        the same path traffic takes, without the deployer needing network access to the pods."""
        namespace = deployment["metadata"]["namespace"]
        service = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        if deployment["spec"].get("replicas", 1) == 0:
            self._log(f"{namespace}/{deployment['metadata']['name']} has 0 replicas: smoke test skipped")
            return {"deployment": deployment["metadata"]["name"], "skipped": "0 replicas"}
        try:
            self._cluster.service_proxy_get(namespace, service, "health", self._smoke_timeout)
        except ClusterError as error:
            raise DeployStepFailed(
                f"smoke test GET /health through Service {namespace}/{service} failed: {error}"
            ) from None
        report: dict[str, Any] = {"deployment": deployment["metadata"]["name"], "health": "ok"}
        if not rows:
            self._log("no sample rows in the request: POST /predict smoke test skipped")
            return report
        try:
            raw = self._cluster.service_proxy_post_json(
                namespace, service, "predict", predict_request_body(rows), self._smoke_timeout
            )
        except ClusterError as error:
            raise DeployStepFailed(
                f"smoke test POST /predict through Service {namespace}/{service} failed: {error}"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise DeployStepFailed(
                f"smoke test POST /predict through Service {namespace}/{service} answered non-JSON: {raw[:200]!r}"
            ) from None
        expected_version = deployment["metadata"]["labels"].get(MODEL_VERSION_LABEL)
        # A canary shares the Service with the old pods, so only the main rollout must answer as the new version.
        if (
            not is_canary
            and isinstance(answer, dict)
            and "version" in answer
            and str(answer["version"]) != expected_version
        ):
            raise DeployStepFailed(
                f"smoke test POST /predict through Service {namespace}/{service} was answered by model version "
                f"{answer['version']!r}, expected {expected_version!r}"
            )
        self._log(
            f"smoke test passed through Service {namespace}/{service}: /health ok, /predict scored {len(rows)} rows"
        )
        return {**report, "predict_rows": len(rows)}

    def _roll_back(
        self,
        request: DeployRequest,
        config: DeployConfig,
        manifests: list[dict[str, Any]],
        previous: dict[str, Any] | None,
        touched: list[str],
        failure: str,
    ) -> DeployResult:
        namespace, name = config.namespace, resource_name(request.model_name)
        previous_image = deployment_image(previous) if previous else None
        self._log(f"deploy failed: {failure}; rolling back")
        lines = [f"Deploy of {request.image} to {namespace} failed: {failure}."]
        result = DeployResult(
            ok=False, target=TARGET_NAME, serving_image=previous_image, previous_image=previous_image, rolled_back=False
        )
        try:
            canary = canary_name(request.model_name)
            if canary in touched:
                self._cluster.delete("Deployment", namespace, canary)
                lines.append(f"Removed canary Deployment {namespace}/{canary}.")
            if name not in touched:
                lines.append(
                    f"Deployment {namespace}/{name} was not changed; {previous_image or 'nothing'} is still serving."
                )
            elif previous is not None:
                stable = next(m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == name)
                restore = rollback_manifest(
                    stable, previous, f"lepton rollback to {previous_image} after failed deploy of {request.image}"
                )
                self._cluster.apply(restore)
                self._wait_for_rollout(restore, config.rollout.timeout_seconds)
                result.rolled_back = True
                lines.append(
                    f"Rolled back Deployment {namespace}/{name}: the previous image {previous_image} is serving."
                )
            else:
                # First deploy: there is nothing to return to, so remove what may half-serve.
                removed = self._cluster.delete("Deployment", namespace, name)
                if config.hpa.enabled:
                    self._cluster.delete("HorizontalPodAutoscaler", namespace, name)
                result.rolled_back = removed
                result.serving_image = None
                done = (
                    f"deleted Deployment {namespace}/{name}"
                    if removed
                    else f"Deployment {namespace}/{name} was never created"
                )
                lines.append(
                    f"This was the first deploy of {request.model_name}: {done}; nothing is serving this model."
                )
        except (ClusterError, DeployStepFailed) as rollback_error:
            result.serving_image = None
            lines.append(
                f"Rollback failed too: {rollback_error}. What serves now is unknown; check "
                f"`kubectl -n {namespace} rollout status deployment/{name}`."
            )
        result.message = " ".join(lines)
        self._log(result.message)
        return result
