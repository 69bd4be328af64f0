"""The always-on collector: ``lepton-collector`` (or ``python -m lepton_pipelines.iot.collector``).

Keeps one persistent MQTT v5 session open, commits telemetry to the lake's landing zone in
micro-batches and acknowledges after each commit (see ``ingest.py``). It exists because a design
that only drains during scheduled runs relies on broker queue limits that lose data by default.

Configuration: the session comes from the source YAML's ``connector:`` block (the same settings the
in-run drain uses), read through the source contract's loader (``contract.documents``: same file formats,
same messages as the code location); the broker from ``LEPTON_MQTT_URL`` (+ ``LEPTON_MQTT_CA_FILE``/``_CERT_FILE``/
``_KEY_FILE`` for ``mqtts://``); the lake from ``LEPTON_LAKE_URL``. HTTP: ``/health`` (liveness: the
receive loop is turning), ``/ready`` (connected and subscribed), ``/metrics`` (Prometheus text).
SIGTERM/SIGINT: stop reading, commit and acknowledge what is buffered, disconnect, exit 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import ValidationError

from lepton_pipelines.connectors.mqtt import MqttSettings
from lepton_pipelines.contract.documents import SourceRegistryError, describe_error, load_spec, shipped_source_file
from lepton_pipelines.contract.spec import SourceSpec
from lepton_pipelines.iot.committer import BatchPolicy, LandingCommitter
from lepton_pipelines.iot.connection import broker_from_env
from lepton_pipelines.iot.ingest import SessionIngest, SessionSettings
from lepton_pipelines.iot.lease import ClientLease, LeaseHeld
from lepton_pipelines.lake.store import Lake

log = logging.getLogger("lepton.iot.collector")

SHIPPED_SOURCE_FILE = shipped_source_file("device_telemetry")
LIVENESS_STALL_SECONDS = 30.0
LEASE_TTL_SECONDS = 60.0


def read_mqtt_source(source_file: Path) -> tuple[SourceSpec, MqttSettings]:
    """(spec, validated MQTT settings) of a source file; ``SourceRegistryError`` naming the file and field.
    The connector block is checked by the same settings model and worded as the registry does."""
    spec = load_spec(source_file)
    if spec.connector.get("type") != "mqtt":
        raise SourceRegistryError(
            [f"{source_file}: connector.type: must be 'mqtt' for the collector, got {spec.connector.get('type')!r}"]
        )
    try:
        return spec, MqttSettings.model_validate(spec.connector)
    except ValidationError as exc:
        raise SourceRegistryError(
            [f"{source_file}: {describe_error(err, prefix='connector')}" for err in exc.errors()]
        ) from None


def load_source_settings(source_file: Path) -> tuple[str, MqttSettings]:
    """(source name, validated MQTT settings) for the command line: a problem exits with its message."""
    try:
        spec, settings = read_mqtt_source(source_file)
    except SourceRegistryError as exc:
        raise SystemExit(str(exc)) from None
    return spec.name, settings


def declared_columns(spec: SourceSpec) -> tuple[str, ...]:
    """The source's column names: bad messages are quarantined with these columns as landed text."""
    return tuple(column.name for column in spec.columns)


def session_settings(settings: MqttSettings, client_id: str | None = None) -> SessionSettings:
    return SessionSettings(
        client_id=client_id or settings.client_id,
        topic_filter=settings.topic_filter,
        qos=settings.qos,
        receive_maximum=settings.receive_maximum,
        session_expiry_seconds=settings.session_expiry_seconds,
        max_payload_bytes=settings.max_payload_bytes,
    )


def batch_policy(settings: MqttSettings) -> BatchPolicy:
    return BatchPolicy(settings.batch_max_messages, settings.batch_max_bytes, settings.batch_max_age_seconds)


class CollectorService:
    def __init__(self, ingest: SessionIngest, lease: ClientLease):
        self.ingest = ingest
        self.lease = lease
        self._stop = threading.Event()
        # A registry of its own: only the collector's metrics, not the process/GC defaults of the global one.
        self.metrics = CollectorRegistry()
        self.metrics.register(_CounterSnapshot(self))

    def request_stop(self, *_: object) -> None:
        log.info("stop requested: committing buffered messages before exit")
        self._stop.set()

    def run(self) -> None:
        self._acquire_lease()
        if self._stop.is_set():
            return
        try:
            self.ingest.run(self._should_stop)
        finally:
            self.lease.release()

    def _acquire_lease(self) -> None:
        while not self._stop.is_set():
            try:
                self.lease.acquire()
                return
            except LeaseHeld as exc:
                log.warning("%s; waiting", exc)
                self._stop.wait(5.0)

    def _should_stop(self, ingest: SessionIngest) -> bool:
        try:
            self.lease.renew_if_due()
        except Exception:  # noqa: BLE001 — a lake hiccup must not stop ingestion; retried next tick
            log.exception("could not renew the client-id lease")
        return self._stop.is_set()

    # -- HTTP ------------------------------------------------------------------------------------------
    def is_alive(self) -> bool:
        return time.monotonic() - self.ingest.counters.last_loop_monotonic < LIVENESS_STALL_SECONDS

    def is_ready(self) -> bool:
        return self.ingest.counters.connected and self.ingest.counters.subscribed

    def metrics_text(self) -> str:
        return generate_latest(self.metrics).decode()

    def serve_http(self, host: str, port: int) -> ThreadingHTTPServer:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — http.server API
                if self.path == "/metrics":
                    self._send(200, service.metrics_text(), CONTENT_TYPE_LATEST)
                elif self.path in ("/health", "/ready"):
                    ok = service.is_alive() if self.path == "/health" else service.is_ready()
                    body = json.dumps(
                        {
                            "ok": ok,
                            "connected": service.ingest.counters.connected,
                            "broker": service.ingest.address.display,
                        }
                    )
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, "not found: try /health, /ready, /metrics", "text/plain")

            def _send(self, status: int, body: str, content_type: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # probes every few seconds would flood the log
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, name="collector-http", daemon=True).start()
        return server


class _CounterSnapshot(Collector):
    """Reads the ingest loop's counters at scrape time. The loop keeps plain integers (it counts per
    message on the hot path); prometheus_client renders them, each labelled with the MQTT client id."""

    def __init__(self, service: CollectorService):
        self.service = service

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        service = self.service
        c = service.ingest.counters
        now = time.monotonic()
        counters = [
            (
                "lepton_collector_messages_received_total",
                "Telemetry messages received (not yet necessarily committed)",
                c.received,
            ),
            ("lepton_collector_messages_committed_total", "Telemetry rows published in landing files", c.committed),
            (
                "lepton_collector_messages_quarantined_total",
                "Bad messages published in quarantine files",
                c.quarantined,
            ),
            (
                "lepton_collector_messages_acked_total",
                "Messages acknowledged to the broker after their commit",
                c.acked,
            ),
            ("lepton_collector_batches_total", "Micro-batches committed", c.batches),
            (
                "lepton_collector_commit_failures_total",
                "Failed commits (messages kept unacknowledged and retried)",
                c.commit_failures,
            ),
            (
                "lepton_collector_sessions_lost_total",
                "Reconnects to a broker that no longer had this client's session (its state was lost)",
                c.sessions_lost,
            ),
            (
                "lepton_collector_committed_without_ack_total",
                "Messages held when the connection dropped: committed, never acked (the broker may resend them)",
                c.committed_without_ack,
            ),
            (
                "lepton_collector_retained_cleared_total",
                "Empty retained messages (clears): acked, not landed",
                c.retained_cleared,
            ),
        ]
        gauges = [
            ("lepton_collector_pending_messages", "Messages received but not yet committed", len(service.ingest.batch)),
            (
                "lepton_collector_lag_seconds",
                "Age of the oldest uncommitted message",
                service.ingest.batch.age_seconds(now),
            ),
            (
                "lepton_collector_last_commit_age_seconds",
                "Seconds since the last commit (-1: none yet)",
                -1 if c.last_commit_monotonic is None else now - c.last_commit_monotonic,
            ),
            (
                "lepton_collector_broker_dropped_messages",
                "Broker $SYS publish/messages/dropped (-1: not seen)",
                -1 if c.broker_dropped is None else c.broker_dropped,
            ),
            ("lepton_collector_connected", "1 when connected and subscribed", int(service.is_ready())),
            (
                "lepton_collector_session_present",
                "The last CONNACK's session-present flag (-1: not connected yet)",
                -1 if c.session_present is None else int(c.session_present),
            ),
        ]
        client = [service.ingest.session.client_id]
        for family, samples in ((CounterMetricFamily, counters), (GaugeMetricFamily, gauges)):
            for name, help_text, value in samples:
                metric = family(name, help_text, labels=["client_id"])
                metric.add_metric(client, value)
                yield metric


def build_service(source_file: Path, client_id: str | None = None, lake_url: str | None = None) -> CollectorService:
    try:
        spec, settings = read_mqtt_source(source_file)
    except SourceRegistryError as exc:
        raise SystemExit(str(exc)) from None
    lake = Lake(lake_url)
    session = session_settings(settings, client_id)
    committer = LandingCommitter(lake, spec.name, columns=declared_columns(spec))
    ingest = SessionIngest(broker_from_env(), session, committer, batch_policy(settings))
    return CollectorService(ingest, ClientLease(lake, session.client_id, LEASE_TTL_SECONDS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lepton-collector", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source-file",
        type=Path,
        default=Path(os.environ.get("LEPTON_COLLECTOR_SOURCE_FILE", SHIPPED_SOURCE_FILE)),
        help="source YAML whose mqtt connector block configures the session",
    )
    parser.add_argument(
        "--client-id", default=os.environ.get("LEPTON_MQTT_CLIENT_ID"), help="override connector.client_id"
    )
    parser.add_argument("--lake", default=None, help="lake URL (default: LEPTON_LAKE_URL)")
    parser.add_argument("--http-host", default=os.environ.get("LEPTON_COLLECTOR_HTTP_HOST", "0.0.0.0"))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("LEPTON_COLLECTOR_HTTP_PORT", "9464")))
    parser.add_argument("--log-level", default=os.environ.get("LEPTON_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    service = build_service(args.source_file, args.client_id, args.lake)
    server = service.serve_http(args.http_host, args.http_port)
    log.info(
        "collector for %s on %s, http on %s:%d",
        service.ingest.session.client_id,
        service.ingest.address.display,
        *server.server_address[:2],
    )
    signal.signal(signal.SIGTERM, service.request_stop)
    signal.signal(signal.SIGINT, service.request_stop)
    try:
        service.run()
    finally:
        server.shutdown()
    c = service.ingest.counters
    log.info(
        "stopped: received %d, committed %d, quarantined %d, acked %d", c.received, c.committed, c.quarantined, c.acked
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
