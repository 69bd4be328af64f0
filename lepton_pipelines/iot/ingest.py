"""The MQTT receive loop shared by the always-on collector and the in-run drain.

One thread does everything — read from the socket, parse, buffer, commit, acknowledge — using paho's
``loop()`` step function. That keeps acknowledgements strictly after commits without locks, and a
commit naturally applies back-pressure: while we write, we do not read, and the broker stops at our
Receive Maximum.

On a lost connection the pending batch is *committed without acknowledgement*. Never discarded: a
broker that crashed and came back from a save taken seconds earlier may no longer hold those messages,
so what the collector already received must reach the lake. Not acknowledged: packet ids belong to the
connection, and acking them on a new one could acknowledge different messages that reuse the ids. The
broker may deliver them again; the clean step removes the duplicates by ``(device_id, seq, ts)``.

Every CONNACK's session-present flag is compared with what we know: once this client id has had a
session (a marker in the lake), a broker answering "no session" has lost it — a crash before its
first save, or an expired session — and everything published meanwhile was dropped without touching
the broker's drop counter. That is recorded as a ``session_lost`` event in the lake, counted on
``/metrics`` and logged as an error; the ``device_seq_gaps`` check then names the missing messages.

Retained messages: the subscription asks for retained copies only when it is new (MQTT v5 Retain
Handling 1), so reconnecting to a session that still exists never re-delivers them, and keeps the
retain flag as published, so an empty retained message — the MQTT way to clear a retained value — is
recognised as a control message (acknowledged, counted, not landed) instead of a bad payload.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from lepton_pipelines.iot.broker_stats import (
    SYS_TOPICS,
    BrokerObservation,
    apply_sys_message,
    broker_key,
    record_observation,
)
from lepton_pipelines.iot.committer import BatchPolicy, LandingCommitter, PendingBatch
from lepton_pipelines.iot.connection import BrokerAddress, new_session_client, persistent_session_properties
from lepton_pipelines.iot.payloads import DEFAULT_MAX_PAYLOAD_BYTES, format_timestamp, parse_telemetry
from lepton_pipelines.iot.sessions import SessionLedger

log = logging.getLogger("lepton.iot")


@dataclass(frozen=True)
class SessionSettings:
    """Everything that identifies and shapes the broker session; shared by collector and drain."""

    client_id: str
    topic_filter: str = "lepton/devices/+/telemetry"
    qos: int = 1
    receive_maximum: int = 1000
    session_expiry_seconds: int = 7 * 24 * 3600
    keepalive_seconds: int = 30
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    watch_broker_stats: bool = True
    stats_record_interval_seconds: float = 60.0


@dataclass
class IngestCounters:
    """Monotonic counters and gauges exported on ``/metrics`` and as Dagster metadata."""

    received: int = 0
    committed: int = 0  # telemetry rows in published landing files
    quarantined: int = 0  # bad messages in published quarantine files
    acked: int = 0
    batches: int = 0
    commit_failures: int = 0
    committed_without_ack: int = 0  # held when the connection was lost: committed, never acked (may come again)
    retained_cleared: int = 0  # empty retained messages (control: acked, not landed)
    connects: int = 0
    sessions_lost: int = 0  # CONNACKs without the session this client id had (broker lost its state)
    session_present: bool | None = None  # the last CONNACK's flag
    broker_dropped: int | None = None
    connected: bool = False
    subscribed: bool = False
    last_commit_monotonic: float | None = None
    last_loop_monotonic: float = field(default_factory=time.monotonic)
    files: list[str] = field(default_factory=list)  # bounded list of recently published files


class SessionIngest:
    """A persistent MQTT v5 session feeding a ``LandingCommitter`` in micro-batches."""

    MAX_REMEMBERED_FILES = 1000
    READ_BURST_PACKETS = 256  # bounded so acks, keep-alives and the age limit are served promptly
    # Reconnect fast: after a broker crash that lost our session, whatever devices publish before we
    # subscribe again is dropped by the broker, so every second of back-off is a second of loss.
    RECONNECT_FIRST_DELAY = 0.1
    RECONNECT_MAX_DELAY = 2.0

    def __init__(
        self,
        address: BrokerAddress,
        session: SessionSettings,
        committer: LandingCommitter,
        policy: BatchPolicy,
        max_messages: int | None = None,
    ):
        # A batch can never be larger than the in-flight window, or only its age limit could close it.
        self.policy = BatchPolicy(
            max_messages=min(policy.max_messages, session.receive_maximum),
            max_bytes=policy.max_bytes,
            max_age_seconds=policy.max_age_seconds,
        )
        self.address = address
        self.session = session
        self.committer = committer
        self.max_messages = max_messages
        self.counters = IngestCounters()
        self.batch = PendingBatch()
        self.broker_observation = BrokerObservation(broker=broker_key(address), observed_at="")
        self._stats_dirty = False
        self._last_stats_record = 0.0
        self._last_message_monotonic = time.monotonic()
        self._retry_commit_at = 0.0
        self._refused: str | None = None
        self._stopping = False  # after the final flush: new messages are left for redelivery
        self._barrier_mid: int | None = None
        self._barrier_passed = False
        self._received_at = ""  # when the current network read began: the messages' _received_at
        self._publishes_seen = 0  # PUBLISH packets handed to _on_message: tells _step a read made progress
        self.sessions = SessionLedger(committer.lake, session.client_id, address)
        self.client = new_session_client(address, session.client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe

    # -- lifecycle -----------------------------------------------------------------------------------
    def connect(self) -> None:
        self._refused = None
        self.client.connect(
            self.address.host,
            self.address.port,
            keepalive=self.session.keepalive_seconds,
            clean_start=False,
            properties=persistent_session_properties(self.session.receive_maximum, self.session.session_expiry_seconds),
        )

    def run(self, should_stop: Callable[[SessionIngest], bool], tick_seconds: float = 0.05) -> None:
        """Receive, commit and acknowledge until ``should_stop`` says so; then flush and disconnect.

        Reconnects with back-off on a lost connection. A broker that refuses us (bad credentials,
        ACL) is an error a person must fix, so it raises ``ConnectionRefusedError``.
        """
        backoff = self.RECONNECT_FIRST_DELAY
        self._connect_with_retry(should_stop)
        while not should_stop(self):
            rc = self._step(tick_seconds)
            self.counters.last_loop_monotonic = time.monotonic()
            if self._refused:
                raise ConnectionRefusedError(f"MQTT broker {self.address.display} refused the session: {self._refused}")
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._commit_held_on_connection_loss()
                time.sleep(backoff)
                backoff = min(backoff * 2, self.RECONNECT_MAX_DELAY)
                try:
                    self.client.reconnect()
                except OSError as exc:
                    log.warning("reconnect to %s failed: %s", self.address.display, exc)
                continue
            backoff = self.RECONNECT_FIRST_DELAY
            if self.batch.is_due(self.policy):
                self.flush()
            self._maybe_record_stats()
        self.flush()
        self._maybe_record_stats(force=True)
        self._stopping = True
        self._wait_for_broker_to_process_acks()
        self.client.disconnect()
        self._step(0.1)

    def _step(self, timeout: float) -> int:
        """One turn of paho's documented external-loop API (select + loop_read/loop_write/loop_misc).

        Used instead of ``Client.loop()``, which adds a wake-up socket pair that costs extra system
        calls on every acknowledgement — here that halved the receive rate.
        """
        sock = self.client.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        pending_tls = getattr(sock, "pending", lambda: 0)()
        readable, writable, _ = select.select(
            [sock], [sock] if self.client.want_write() else [], [], 0.0 if pending_tls else timeout
        )
        if readable or pending_tls:
            self._received_at = format_timestamp(datetime.now(UTC))
            # paho's loop_read() handles one packet per call when nothing of ours is in flight, so
            # keep reading while packets keep coming (a drained socket costs one EAGAIN recv), then
            # write our acks and run the keep-alive bookkeeping once for the whole burst.
            for _ in range(self.READ_BURST_PACKETS):
                seen = self._publishes_seen
                rc = self.client.loop_read()
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    return rc
                if self._publishes_seen == seen:
                    break
        if self.client.want_write():
            rc = self.client.loop_write()
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                return rc
        return self.client.loop_misc()

    def _wait_for_broker_to_process_acks(self, timeout: float = 5.0) -> None:
        """Round-trip an UNSUBSCRIBE (of a topic we never subscribed) before disconnecting.

        The broker handles a connection's packets in order, so its UNSUBACK proves every PUBACK we
        sent was processed. Without this barrier, closing the socket while the broker is still
        sending makes the kernel reset the connection, and the broker may discard our last acks
        (harmless — those messages come again — but a bounded drain should end clean).
        """
        if not self.counters.connected:
            return
        result, mid = self.client.unsubscribe(f"lepton/ack-barrier/{self.session.client_id}")
        if result != mqtt.MQTT_ERR_SUCCESS:
            return
        self._barrier_mid, self._barrier_passed = mid, False
        deadline = time.monotonic() + timeout
        while not self._barrier_passed and time.monotonic() < deadline:
            if self._step(0.05) != mqtt.MQTT_ERR_SUCCESS:
                return

    def _connect_with_retry(self, should_stop: Callable[[SessionIngest], bool]) -> None:
        delay = 0.5
        while True:
            try:
                self.connect()
                return
            except OSError as exc:
                log.warning("cannot reach MQTT broker %s: %s (retrying in %.1fs)", self.address.display, exc, delay)
                if should_stop(self):
                    raise ConnectionError(f"cannot reach MQTT broker {self.address.display}: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    @property
    def idle_seconds(self) -> float:
        return time.monotonic() - self._last_message_monotonic

    @property
    def limit_reached(self) -> bool:
        return self.max_messages is not None and self.counters.received >= self.max_messages

    # -- committing ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Commit the pending batch, then acknowledge its messages. On failure keep the batch (still
        unacknowledged) and retry later; the broker's in-flight window bounds what piles up meanwhile."""
        if not len(self.batch) or time.monotonic() < self._retry_commit_at:
            return
        try:
            result = self.committer.commit(self.batch)
        except Exception:  # noqa: BLE001 — any storage error: keep the messages, retry, never ack
            self.counters.commit_failures += 1
            self._retry_commit_at = time.monotonic() + min(30.0, 0.5 * 2 ** min(self.counters.commit_failures, 6))
            log.exception(
                "commit of %d message(s) failed; they stay unacknowledged and will be retried", len(self.batch)
            )
            return
        self._retry_commit_at = 0.0
        for mid, qos in result.ack_tokens:
            self.client.ack(mid, qos)
        self.counters.committed_without_ack += len(self.batch) - len(result.ack_tokens)
        self.counters.committed += result.telemetry_count
        self.counters.quarantined += result.quarantined_count
        self.counters.acked += len(result.ack_tokens)
        self.counters.batches += 1
        self.counters.last_commit_monotonic = time.monotonic()
        self.counters.files = (self.counters.files + result.files)[-self.MAX_REMEMBERED_FILES :]
        self.batch = PendingBatch()

    def _commit_held_on_connection_loss(self) -> None:
        """Commit what we hold without acknowledging it (see the module docstring). A failing commit
        keeps the batch, tokens forgotten, and is retried by the next ``flush`` like any other."""
        if not len(self.batch):
            return
        log.warning(
            "connection to %s lost: committing %d received message(s) without acknowledgement "
            "(the broker may deliver them again; clean removes the duplicates)",
            self.address.display,
            len(self.batch),
        )
        self.batch.forget_acks()
        self._retry_commit_at = 0.0
        self.flush()

    # -- broker statistics -----------------------------------------------------------------------------
    def _maybe_record_stats(self, force: bool = False) -> None:
        if not self.session.watch_broker_stats or not self.broker_observation.observed_at:
            return
        due = time.monotonic() - self._last_stats_record >= self.session.stats_record_interval_seconds
        if self._stats_dirty or due or force:
            try:
                record_observation(self.committer.lake, self.broker_observation)
            except Exception:  # noqa: BLE001 — stats must never stop ingestion; retried next tick
                log.exception("could not record broker statistics")
                return
            self._stats_dirty = False
            self._last_stats_record = time.monotonic()

    # -- paho callbacks (all on this thread) -----------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        self.counters.connected = True
        self.counters.connects += 1
        present = bool(flags.session_present)
        self.counters.session_present = present
        log.info("connected to %s as %s (session present: %s)", self.address.display, self.session.client_id, present)
        if not present and self.sessions.had_session():
            self.counters.sessions_lost += 1
            log.error(
                "broker %s has no session for %s although it had one: it lost its state (crash before a save, "
                "or the session expired). Messages published until this reconnect were dropped by the broker; "
                "the device_seq_gaps check names them",
                self.address.display,
                self.session.client_id,
            )
            try:
                self.sessions.record_lost()
            except Exception:  # noqa: BLE001 — the event is also in the log and the metric; never stop ingestion
                log.exception("could not record the session_lost event")
        # Retained copies only for a new subscription (Retain Handling 1), retain flag as published so
        # an empty retained message is recognisable as a clear.
        telemetry = SubscribeOptions(
            qos=self.session.qos, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        )
        topics = [(self.session.topic_filter, telemetry)]
        if self.session.watch_broker_stats:
            topics += [(topic, SubscribeOptions(qos=0)) for topic in SYS_TOPICS]
        client.subscribe(topics)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            self._refused = (
                f"subscription to {self.session.topic_filter!r} rejected ({', '.join(failed)}); check the broker ACL"
            )
            return
        self.counters.subscribed = True
        try:
            self.sessions.mark_established()
        except Exception:  # noqa: BLE001 — retried on the next SUBACK; only loss *detection* depends on it
            log.exception("could not record that the session exists")

    def _on_unsubscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        if mid == self._barrier_mid:
            self._barrier_passed = True

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.counters.connected = False
        self.counters.subscribed = False

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._publishes_seen += 1
        topic = message.topic
        if topic.startswith("$SYS/"):
            updated = apply_sys_message(self.broker_observation, topic, message.payload)
            updated = replace(updated, observed_at=datetime.now(UTC).isoformat(timespec="microseconds"))
            self._stats_dirty = self._stats_dirty or updated.dropped != self.broker_observation.dropped
            self.broker_observation = updated
            self.counters.broker_dropped = updated.dropped
            return
        if self._stopping or (self.max_messages is not None and self.counters.received >= self.max_messages):
            return  # beyond this run's bound: left unacknowledged, so the broker redelivers it next time
        payload = message.payload
        if not payload and message.retain:
            self.batch.add_control((message.mid, message.qos))  # a retained-value clear: acked with the batch
            self.counters.retained_cleared += 1
            log.info("retained message on %s cleared (empty retained payload): nothing to land", topic)
            if self.batch.is_full(self.policy):
                self.flush()
            return
        parsed = parse_telemetry(topic, payload, self._received_at, self.session.max_payload_bytes)
        self.batch.add(parsed, topic, payload, self._received_at, (message.mid, message.qos))
        self.counters.received += 1
        self._last_message_monotonic = time.monotonic()
        if self.batch.is_full(self.policy):
            self.flush()
