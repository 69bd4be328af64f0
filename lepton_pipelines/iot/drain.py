"""The in-run drain: the collector's receive/commit/ack loop, bounded, for sites without the service.

Runs until the first of: ``max_messages`` received, ``max_seconds`` elapsed, or the queue has been
quiet for ``idle_seconds`` (the broker sends a resumed session's backlog right after CONNACK, so a
quiet socket means the backlog is drained). Messages beyond ``max_messages`` are left
unacknowledged and arrive in the next run. Micro-batches never exceed the Receive Maximum window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lepton_pipelines.connectors.mqtt import MqttSettings
from lepton_pipelines.iot.committer import BatchPolicy, LandingCommitter
from lepton_pipelines.iot.connection import BrokerAddress
from lepton_pipelines.iot.ingest import IngestCounters, SessionIngest, SessionSettings
from lepton_pipelines.iot.lease import ClientLease

DRAIN_LEASE_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class DrainResult:
    counters: IngestCounters
    stopped_by: str  # "max_messages", "max_seconds" or "idle"
    seconds: float
    broker_dropped: int | None


def drain(
    lake: Any,
    address: BrokerAddress,
    settings: MqttSettings,
    source: str = "device_telemetry",
    max_messages: int | None = None,
    max_seconds: float | None = None,
    idle_seconds: float | None = None,
    columns: tuple[str, ...] | None = None,
) -> DrainResult:
    """Drain the session's backlog into landing files. Raises ``LeaseHeld`` when the client id is in
    use (the collector or another drain), ``ConnectionRefusedError`` when the broker rejects us."""
    max_messages = max_messages or settings.drain_max_messages
    max_seconds = max_seconds or settings.drain_max_seconds
    idle_seconds = idle_seconds or settings.drain_idle_seconds
    session = SessionSettings(
        client_id=settings.client_id,
        topic_filter=settings.topic_filter,
        qos=settings.qos,
        receive_maximum=settings.receive_maximum,
        session_expiry_seconds=settings.session_expiry_seconds,
        max_payload_bytes=settings.max_payload_bytes,
    )
    policy = BatchPolicy(settings.batch_max_messages, settings.batch_max_bytes, settings.batch_max_age_seconds)
    ingest = SessionIngest(
        address,
        session,
        LandingCommitter(lake, source, **({"columns": columns} if columns else {})),
        policy,
        max_messages=max_messages,
    )
    lease = ClientLease(lake, settings.client_id, DRAIN_LEASE_TTL_SECONDS)
    lease.acquire()
    started = time.monotonic()
    reason = {"value": ""}

    def should_stop(current: SessionIngest) -> bool:
        lease.renew_if_due()
        if current.limit_reached:
            reason["value"] = "max_messages"
        elif time.monotonic() - started >= max_seconds:
            reason["value"] = "max_seconds"
        elif current.counters.subscribed and current.idle_seconds >= idle_seconds:
            reason["value"] = "idle"
        return bool(reason["value"])

    try:
        ingest.run(should_stop)
    finally:
        lease.release()
    return DrainResult(
        counters=ingest.counters,
        stopped_by=reason["value"],
        seconds=time.monotonic() - started,
        broker_dropped=ingest.counters.broker_dropped,
    )
