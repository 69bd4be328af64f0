"""Single-Docker-host deploy target (``docker_host``): blue/green containers with health-gated cutover."""

from .config import DockerHostDeployConfig, InvalidDeployConfig
from .target import DockerHostStatus, DockerHostTarget, ReplicaStatus

__all__ = ["DockerHostDeployConfig", "DockerHostStatus", "DockerHostTarget", "InvalidDeployConfig", "ReplicaStatus"]
