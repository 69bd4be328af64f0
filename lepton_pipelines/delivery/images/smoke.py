"""Smoke-test a freshly built model-service image by running it once, the way it will run in production.

It runs before the push: an image that cannot serve its own sample input never reaches the registry.

The image ships a ``smoke`` entrypoint that starts the real server on a free 127.0.0.1 port
in-process, calls /health, /ready, /predict (the card's sample_input) and /metrics, prints a JSON
report and exits 0/1. Running it through dagster-docker's ``execute_docker_container`` with host
networking and the production hardening (``delivery.hardening``: non-root, read-only root
filesystem, no capabilities — the very settings the deploy targets use) means no port mapping, no
second container and no cleanup of a long-running service — and a failure lands in the op's logs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import docker
import docker.errors
from dagster import OpExecutionContext
from dagster_docker import execute_docker_container

from lepton_pipelines.delivery.hardening import HARDENING

SMOKE_ENTRYPOINT = ["python", "-m", "lepton_model_service", "smoke"]
SMOKE_RUN_LABEL = "org.lepton.smoke-run"


class SmokeTestFailed(RuntimeError):
    """The image did not serve its own sample input; ``report`` holds the checks and container output."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def smoke_container_kwargs(run_label: str) -> dict[str, Any]:
    """The production hardening the service must survive, plus a label to find the container again."""
    return {"network_mode": "host", **HARDENING.docker_run_kwargs(), "labels": {SMOKE_RUN_LABEL: run_label}}


def parse_smoke_report(logs: str) -> dict[str, Any]:
    """The last JSON line with a ``smoke`` key; ``{}`` when the container died before printing one."""
    for line in reversed(logs.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"smoke"' in line:
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def run_smoke_test(
    context: OpExecutionContext,
    image: str,
    ready_timeout_s: float = 120.0,
    registry: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the image's smoke entrypoint; return its report or raise SmokeTestFailed with the evidence."""
    run_label = uuid.uuid4().hex
    client = docker.from_env()
    failure: Exception | None = None
    try:
        execute_docker_container(
            context,
            image=image,
            entrypoint=SMOKE_ENTRYPOINT,
            command=[str(ready_timeout_s)],
            registry=registry,
            container_kwargs=smoke_container_kwargs(run_label),
        )
    except Exception as exc:  # execute_docker_container raises a bare Exception on a non-zero exit
        failure = exc
    finally:
        logs = ""
        for container in client.containers.list(all=True, filters={"label": f"{SMOKE_RUN_LABEL}={run_label}"}):
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
    report = parse_smoke_report(logs)
    report["output_tail"] = logs[-4000:]
    if failure is not None or report.get("smoke") != "passed":
        failed = [c for c in report.get("checks", []) if not c.get("ok")]
        reasons = (
            "; ".join(f"{c['check']}: {c['detail']}" for c in failed)
            or (logs.strip().splitlines() or ["no output"])[-1]
        )
        raise SmokeTestFailed(f"smoke test of {image} failed ({failure or 'report says failed'}): {reasons}", report)
    return report
