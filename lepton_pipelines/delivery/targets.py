"""The one interface every deploy target implements.

A deploy target turns a pushed model-service image into a running, health-checked service, or
leaves the previous version serving. Kubernetes and a single Docker host are the two shipped
targets; a new target is one small class registered in ``DEPLOY_TARGETS`` — the deploy job
never grows an if/else per target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy. ``image`` is the full reference ``<registry>/lepton/model-<name>:<version>``."""

    model_name: str
    model_version: str
    image: str
    run_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # target-specific deploy configuration
    sample_rows: list[dict[str, Any]] = field(default_factory=list)  # a request body for /predict smoke tests


@dataclass
class DeployResult:
    """What happened. ``serving_image`` is what serves traffic after the call, success or not."""

    ok: bool
    target: str
    serving_image: str | None
    previous_image: str | None = None
    rolled_back: bool = False
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # manifests, endpoints, timings → asset/op metadata


class DeployFailed(Exception):
    """Raised by targets after a rollback so the run fails with what failed and what serves now."""

    def __init__(self, result: DeployResult):
        super().__init__(result.message)
        self.result = result


class DeployTarget(ABC):
    name: ClassVar[str]

    @abstractmethod
    def deploy(self, request: DeployRequest, log: Callable[[str], None] = print) -> DeployResult:
        """Deploy, verify, and on any failure roll back and raise ``DeployFailed``."""


DEPLOY_TARGETS: dict[str, type[DeployTarget]] = {}


def register_target(cls: type[DeployTarget]) -> type[DeployTarget]:
    DEPLOY_TARGETS[cls.name] = cls
    return cls
