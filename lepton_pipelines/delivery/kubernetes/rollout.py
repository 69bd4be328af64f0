"""Reading a Deployment's rollout progress, the way ``kubectl rollout status`` does.

Pure function over the Deployment object as returned by the API server, so the rules are tested
directly and the deployer only loops and sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    message: str


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    metadata = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status") or {}
    name = metadata.get("name", "?")
    # Until the controller has seen the new spec, the status describes the old one.
    if status.get("observedGeneration", 0) < metadata.get("generation", 0):
        return RolloutState(
            False, False, f"waiting for the controller to observe {name} generation {metadata.get('generation')}"
        )
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(
                False, True, f"ProgressDeadlineExceeded: {condition.get('message') or f'{name} made no progress'}"
            )
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    ready = status.get("readyReplicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        return RolloutState(False, False, f"{updated} of {desired} replicas updated")
    if total > updated:
        return RolloutState(False, False, f"{total - updated} old replicas pending termination")
    if ready < updated or available < updated:
        return RolloutState(False, False, f"{min(ready, available)} of {updated} updated replicas ready and available")
    return RolloutState(True, False, f"{name}: {updated} of {desired} replicas updated, ready and available")


# Container states no amount of waiting fixes: the image cannot be pulled, the config is unusable,
# or the process keeps crashing.
TERMINAL_WAITING_REASONS = {
    "ErrImagePull": "image pull error",
    "ImagePullBackOff": "image pull error",
    "InvalidImageName": "invalid image name",
    "CrashLoopBackOff": "crash loop",
    "CreateContainerConfigError": "container config error",
    "CreateContainerError": "container cannot be created",
}


def terminal_pod_problem(pods: list[dict[str, Any]]) -> str | None:
    """The first pod of the new version that is in a terminal state, described; None if none is."""
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in TERMINAL_WAITING_REASONS:
                detail = waiting.get("message") or ""
                restarts = status.get("restartCount", 0)
                return (
                    f"pod {name} container {status.get('name')}: {TERMINAL_WAITING_REASONS[reason]} ({reason}"
                    + (f", {restarts} restarts" if restarts else "")
                    + (f": {detail}" if detail else "")
                    + ")"
                )
    return None
