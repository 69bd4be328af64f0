"""Blue/green slots on one host: which containers serve, where the next version goes, which ports it gets.

Pure functions over container records (no Docker calls) so the rules are readable and testable on
their own. Labels on the containers are the only state: there is no side file that could disagree
with what is actually running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import SLOT_PORT_OFFSET

LABEL_MODEL_NAME = "org.lepton.model.name"
LABEL_MODEL_VERSION = "org.lepton.model.version"
LABEL_SLOT = "org.lepton.deploy.slot"
LABEL_PORT = "org.lepton.deploy.port"
LABEL_REPLICA = "org.lepton.deploy.replica"
# The image as the deploy request named it (tag); the container itself runs the pinned digest.
LABEL_IMAGE = "org.lepton.deploy.image"
# Model-service images carry org.lepton.model.* themselves, so a container someone ran by hand from
# such an image would match a model-name filter; this label marks the containers this target owns.
LABEL_TARGET = "org.lepton.deploy.target"
TARGET_NAME = "docker_host"

BLUE, GREEN = "blue", "green"
SLOTS = (BLUE, GREEN)


@dataclass(frozen=True)
class ReplicaRecord:
    """One deployed container, as read back from the Docker engine."""

    container_id: str
    name: str
    slot: str
    version: str
    image: str
    port: int | None
    state: str  # Docker's State.Status: created, running, restarting, exited, dead …
    created: str  # ISO-8601 from Docker; sorts chronologically as a string


@dataclass(frozen=True)
class SlotPlan:
    serving_slot: str | None
    new_slot: str
    stale: list[ReplicaRecord]  # leftovers of an interrupted deploy in the slot we are about to use


def owner_label_filters(model_name: str) -> list[str]:
    return [f"{LABEL_TARGET}={TARGET_NAME}", f"{LABEL_MODEL_NAME}={model_name}"]


def container_labels(
    model_name: str, model_version: str, slot: str, port: int, replica: int, image: str = ""
) -> dict[str, str]:
    return {
        **({LABEL_IMAGE: image} if image else {}),
        LABEL_TARGET: TARGET_NAME,
        LABEL_MODEL_NAME: model_name,
        LABEL_MODEL_VERSION: model_version,
        LABEL_SLOT: slot,
        LABEL_PORT: str(port),
        LABEL_REPLICA: str(replica),
    }


def container_name(model_name: str, slot: str, replica: int) -> str:
    return f"lepton-model-{model_name}-{slot}-{replica}"


def slot_ports(slot: str, base_port: int, replicas: int) -> list[int]:
    first = base_port + (SLOT_PORT_OFFSET if slot == GREEN else 0)
    return [first + replica for replica in range(replicas)]


def other_slot(slot: str) -> str:
    return GREEN if slot == BLUE else BLUE


def record_from_container_attrs(attrs: Mapping[str, Any]) -> ReplicaRecord:
    labels = attrs.get("Config", {}).get("Labels") or {}
    port = labels.get(LABEL_PORT)
    return ReplicaRecord(
        container_id=attrs["Id"],
        name=attrs.get("Name", "").lstrip("/"),
        slot=labels.get(LABEL_SLOT, ""),
        version=labels.get(LABEL_MODEL_VERSION, ""),
        image=labels.get(LABEL_IMAGE) or attrs.get("Config", {}).get("Image", ""),
        port=int(port) if port and port.isdigit() else None,
        state=attrs.get("State", {}).get("Status", "unknown"),
        created=attrs.get("Created", ""),
    )


def plan_slots(existing: list[ReplicaRecord]) -> SlotPlan:
    """Pick the serving slot and the slot for the new version.

    Normally at most one slot holds containers: a deploy ends by removing either the old slot
    (success) or the new one (rollback). Both slots are only populated when a deploy was interrupted
    (killed run, lost host); then the *older* slot is the last one that was known to serve, and the
    newer one is unverified and gets replaced.
    """
    by_slot = {slot: [r for r in existing if r.slot == slot] for slot in SLOTS}
    populated = [slot for slot in SLOTS if by_slot[slot]]
    if not populated:
        return SlotPlan(serving_slot=None, new_slot=BLUE, stale=[])
    serving = min(populated, key=lambda slot: min(r.created for r in by_slot[slot]))
    new = other_slot(serving)
    return SlotPlan(serving_slot=serving, new_slot=new, stale=by_slot[new])
