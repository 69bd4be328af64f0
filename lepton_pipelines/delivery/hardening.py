"""How every model-service (and gateway) container runs, in one place: smoke test, Docker host and Kubernetes.

The smoke test proves an image works under these settings; the Docker-host target and the Kubernetes
Deployment run it under the very same ones, rendered from this one definition, so the deployed
container can never be weaker than the tested one: non-root (uid 10001), read-only root filesystem
with a small private ``/tmp``, every Linux capability dropped, no privilege escalation, the runtime's
default seccomp profile. ``hardening_problems`` reads a running container back and says what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_USER_ID = 10001


@dataclass(frozen=True)
class ServiceHardening:
    user_id: int = SERVICE_USER_ID
    group_id: int = SERVICE_USER_ID
    tmp_size_mb: int = 64

    # -- Docker (docker SDK ``containers.run`` keyword arguments) ---------------------------------
    def docker_run_kwargs(self, extra_tmpfs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Docker applies its default seccomp profile unless told otherwise, so none is set here."""
        return {
            "user": f"{self.user_id}:{self.group_id}",
            "read_only": True,
            "tmpfs": {"/tmp": self.tmpfs_options(), **(extra_tmpfs or {})},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
        }

    def tmpfs_options(self, mode: str = "1777") -> str:
        return f"rw,nosuid,nodev,size={self.tmp_size_mb}m,mode={mode}"

    def private_tmpfs_options(self) -> str:
        """A tmpfs only the service user can read (secrets the entrypoint writes, control sockets)."""
        return f"rw,nosuid,nodev,noexec,size=4m,mode=0700,uid={self.user_id},gid={self.group_id}"

    # -- Kubernetes -------------------------------------------------------------------------------
    def kubernetes_container_security_context(self) -> dict[str, Any]:
        """Satisfies the "restricted" Pod Security Standard, so the namespace can enforce it."""
        return {
            "runAsNonRoot": True,
            "runAsUser": self.user_id,
            "runAsGroup": self.group_id,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    def kubernetes_pod_security_context(self) -> dict[str, Any]:
        return {
            "runAsNonRoot": True,
            "runAsUser": self.user_id,
            "runAsGroup": self.group_id,
            "fsGroup": self.group_id,
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    def kubernetes_tmp_volume(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(volume, volumeMount) for the writable ``/tmp`` a read-only root filesystem still needs."""
        return {"name": "tmp", "emptyDir": {"sizeLimit": f"{self.tmp_size_mb}Mi"}}, {"name": "tmp", "mountPath": "/tmp"}


HARDENING = ServiceHardening()


def hardening_problems(container_attrs: Mapping[str, Any], hardening: ServiceHardening = HARDENING) -> list[str]:
    """What a running container's inspect data lacks of ``hardening`` (empty when it matches)."""
    host = container_attrs.get("HostConfig") or {}
    config = container_attrs.get("Config") or {}
    problems = []
    if not host.get("ReadonlyRootfs"):
        problems.append("root filesystem is writable")
    if "ALL" not in [cap.upper() for cap in host.get("CapDrop") or []]:
        problems.append(f"capabilities not all dropped (CapDrop={host.get('CapDrop')})")
    if host.get("CapAdd"):
        problems.append(f"capabilities added: {host.get('CapAdd')}")
    if "no-new-privileges" not in (host.get("SecurityOpt") or []) and "no-new-privileges:true" not in (
        host.get("SecurityOpt") or []
    ):
        problems.append("privilege escalation not disabled (no-new-privileges)")
    if host.get("Privileged"):
        problems.append("runs privileged")
    user = str(config.get("User") or "")
    if user.split(":")[0] in ("", "0", "root"):
        problems.append(f"runs as root (User={user!r})")
    return problems
