"""Rollout status rules, as kubectl rollout status reads them."""

from __future__ import annotations

from typing import Any

import pytest

from lepton_pipelines.delivery.kubernetes.rollout import rollout_state

pytestmark = pytest.mark.timeout(30)


def _deployment(generation: int = 2, desired: int = 3, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "model-churn", "generation": generation},
        "spec": {"replicas": desired},
        "status": status,
    }


def test_status_of_an_unobserved_generation_is_not_trusted() -> None:
    state = rollout_state(
        _deployment(observedGeneration=1, replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3)
    )
    assert not state.done and not state.failed and "observe" in state.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"updatedReplicas": 1, "replicas": 3}, "1 of 3 replicas updated"),
        ({"updatedReplicas": 3, "replicas": 4}, "1 old replicas pending termination"),
        (
            {"updatedReplicas": 3, "replicas": 3, "readyReplicas": 3, "availableReplicas": 2},
            "2 of 3 updated replicas ready",
        ),
    ],
)
def test_partial_rollouts_are_in_progress(status: dict[str, Any], expected: str) -> None:
    state = rollout_state(_deployment(observedGeneration=2, **status))
    assert (state.done, state.failed) == (False, False) and expected in state.message


def test_complete_and_deadline_exceeded() -> None:
    done = rollout_state(
        _deployment(observedGeneration=2, replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3)
    )
    assert done.done and not done.failed
    stuck = rollout_state(
        _deployment(
            observedGeneration=2,
            updatedReplicas=1,
            conditions=[
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}
            ],
        )
    )
    assert stuck.failed and not stuck.done and "ProgressDeadlineExceeded: timed out" == stuck.message
