"""The broker's ``$SYS`` counters, persisted in the lake so that data loss is never silent.

Mosquitto drops QoS 1 messages when an offline session's queue is full (``max_queued_messages``,
1,000 by default) and counts them in ``$SYS/broker/publish/messages/dropped``. The collector and the
in-run drain subscribe to these topics and record observations under
``<lake>/_iot/broker_stats/broker=<host_port>/<observed_at>.json``; the drop-count asset check sums the
increases since the last observation it evaluated and fails when anything was dropped.

Counters reset when the broker restarts (uptime goes down): then the new value itself is the increase.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from lepton_pipelines.iot.connection import BrokerAddress, new_session_client
from lepton_pipelines.lake.atomic import write_atomic

DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
SYS_TOPICS = {
    DROPPED_TOPIC: "dropped",
    "$SYS/broker/uptime": "uptime_seconds",
    "$SYS/broker/publish/messages/received": "publish_received",
    "$SYS/broker/publish/messages/sent": "publish_sent",
    "$SYS/broker/store/messages/count": "stored_messages",
    "$SYS/broker/clients/connected": "clients_connected",
}
STATS_DIR = ("_iot", "broker_stats")
CURSOR_FILE = "_last_checked.json"


@dataclass(frozen=True)
class BrokerObservation:
    broker: str  # host:port only — never credentials
    observed_at: str  # ISO-8601 UTC
    dropped: int = 0  # Mosquitto publishes the counter only once it changes, so absent means 0
    uptime_seconds: int | None = None
    publish_received: int | None = None
    publish_sent: int | None = None
    stored_messages: int | None = None
    clients_connected: int | None = None


def apply_sys_message(observation: BrokerObservation, topic: str, payload: bytes) -> BrokerObservation:
    """Fold one ``$SYS`` message into an observation (unknown topics and unparsable values are ignored)."""
    name = SYS_TOPICS.get(topic)
    if name is None:
        return observation
    match = re.match(rb"\s*(\d+)", payload)
    if not match:
        return observation
    return replace(observation, **{name: int(match.group(1))})


def drop_increase(previous: BrokerObservation, current: BrokerObservation) -> int:
    """Messages dropped between two observations, counting a broker restart as a reset to zero."""
    restarted = current.dropped < previous.dropped or (
        current.uptime_seconds is not None
        and previous.uptime_seconds is not None
        and current.uptime_seconds < previous.uptime_seconds
    )
    return current.dropped if restarted else current.dropped - previous.dropped


def drops_since(baseline: BrokerObservation | None, observations: list[BrokerObservation]) -> int:
    """Total drops over a chronological series of observations following ``baseline``."""
    total, previous = 0, baseline
    for observation in observations:
        if previous is not None:
            total += drop_increase(previous, observation)
        previous = observation
    return total


def broker_key(address: BrokerAddress) -> str:
    return f"{address.host}_{address.port}".replace(":", "_")


# -- persistence ------------------------------------------------------------------------------------
def _stats_dir(lake: Any, broker: str):
    return lake.path(*STATS_DIR, f"broker={broker}")


def record_observation(lake: Any, observation: BrokerObservation) -> str:
    stamp = observation.observed_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    return write_atomic(
        _stats_dir(lake, observation.broker) / f"{stamp}.json", json.dumps(asdict(observation)).encode()
    )


def load_observations(lake: Any, broker: str) -> list[BrokerObservation]:
    folder = _stats_dir(lake, broker)
    if not folder.exists():
        return []
    found = [
        BrokerObservation(**json.loads(path.read_text()))
        for path in folder.iterdir()
        if path.name.endswith(".json") and not path.name.startswith((".", "_"))
    ]
    return sorted(found, key=lambda o: o.observed_at)


def load_cursor(lake: Any, broker: str) -> BrokerObservation | None:
    path = _stats_dir(lake, broker) / CURSOR_FILE
    return BrokerObservation(**json.loads(path.read_text())) if path.exists() else None


def save_cursor(lake: Any, observation: BrokerObservation) -> None:
    write_atomic(_stats_dir(lake, observation.broker) / CURSOR_FILE, json.dumps(asdict(observation)).encode())


@dataclass(frozen=True)
class DropCheckOutcome:
    passed: bool
    dropped_since_last_check: int
    observations_considered: int
    latest: BrokerObservation | None
    description: str


def evaluate_drop_check(lake: Any, broker: str) -> DropCheckOutcome:
    """Sum drops across every observation recorded since the previous check, then move the cursor.

    Comparing against the check's own cursor (not just the last two files) means a rise recorded
    by the collector between two check runs can never be skipped.
    """
    cursor = load_cursor(lake, broker)
    series = [o for o in load_observations(lake, broker) if cursor is None or o.observed_at > cursor.observed_at]
    if not series:
        return DropCheckOutcome(True, 0, 0, cursor, "no new broker observation since the last check")
    dropped = drops_since(cursor, series)
    save_cursor(lake, series[-1])
    if dropped > 0:
        description = (
            f"broker {broker} dropped {dropped} published message(s) since the last check "
            f"(counter {series[-1].dropped}): a queue or in-flight limit was hit — raise max_queued_messages "
            "in the broker config or run the collector continuously"
        )
        return DropCheckOutcome(False, dropped, len(series), series[-1], description)
    return DropCheckOutcome(True, 0, len(series), series[-1], f"broker {broker}: no dropped messages")


# -- one-shot observation -----------------------------------------------------------------------------
def observe_broker(
    address: BrokerAddress, client_id: str, settle_seconds: float = 0.5, timeout: float = 10.0
) -> BrokerObservation:
    """Connect with a throw-away clean session and read the retained ``$SYS`` values.

    Mosquitto retains its ``$SYS`` topics, so they arrive right after SUBACK; we wait
    ``settle_seconds`` more for the last of them. Raises ``ConnectionError`` when the broker is unreachable.
    """
    client = new_session_client(address, client_id)
    observation = BrokerObservation(broker=broker_key(address), observed_at=_now())
    state: dict[str, Any] = {"obs": observation, "subscribed": threading.Event(), "error": None}

    def on_connect(client_, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            state["error"] = f"broker refused the connection: {reason_code}"
            state["subscribed"].set()
            return
        client_.subscribe([(topic, 0) for topic in SYS_TOPICS])

    def on_subscribe(client_, userdata, mid, reason_codes, properties):
        state["subscribed"].set()

    def on_message(client_, userdata, message):
        state["obs"] = apply_sys_message(state["obs"], message.topic, message.payload)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=True)
    except OSError as exc:
        raise ConnectionError(f"cannot reach MQTT broker {address.display}: {exc}") from None
    client.loop_start()
    try:
        if not state["subscribed"].wait(timeout) or state["error"]:
            raise ConnectionError(state["error"] or f"no SUBACK from {address.display} within {timeout}s")
        time.sleep(settle_seconds)
    finally:
        client.disconnect()
        client.loop_stop()
    return replace(state["obs"], observed_at=_now())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
