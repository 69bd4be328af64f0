"""The collector and the in-run drain against real Mosquitto brokers: nothing is ever lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import paho.mqtt.client as mqtt
import pyarrow.parquet as pq
import pytest

from lepton_pipelines.connectors.mqtt import MqttSettings
from lepton_pipelines.iot import simulator
from lepton_pipelines.iot.connection import parse_mqtt_url
from lepton_pipelines.iot.definitions import SETTINGS, broker_dropped_messages
from lepton_pipelines.iot.drain import drain
from lepton_pipelines.iot.payloads import decode_raw
from lepton_pipelines.iot.resource import MqttBrokerResource
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines_tests.iot.conftest import REPO, RUNNING, free_port, hidden_files, landed_keys

pytestmark = pytest.mark.timeout(180)


def fleet(devices: int, per_device: int, seed: int = 1, **faults) -> simulator.SimulatorConfig:
    return simulator.SimulatorConfig(
        devices=devices,
        messages_per_device=per_device,
        seed=seed,
        start=datetime(2026, 1, 5, 23, 59, 30, tzinfo=UTC),
        **faults,
    )


def expected_keys(config: simulator.SimulatorConfig) -> set[tuple[str, int]]:
    return {(m.device_id, m.seq) for m in simulator.generate(config) if m.seq is not None}


def publish(monkeypatch, url: str, config: simulator.SimulatorConfig) -> int:
    monkeypatch.setenv("LEPTON_MQTT_URL", url)
    return simulator.publish(config)


class Collector:
    """``python -m lepton_pipelines.iot.collector`` as a separate process, like in production."""

    def __init__(self, lake: Path, url: str, source_file: Path | None = None):
        self.lake, self.url, self.port = lake, url, free_port()
        env = {
            **os.environ,
            "LEPTON_MQTT_URL": url,
            "LEPTON_LAKE_URL": str(lake),
            "LEPTON_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        extra = ["--source-file", str(source_file)] if source_file else []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lepton_pipelines.iot.collector",
                "--http-host",
                "127.0.0.1",
                "--http-port",
                str(self.port),
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file(),
        )
        RUNNING.append(self.process)
        self.wait_until(lambda: self.get("/ready")[0] == 200, "collector ready")

    def _log_file(self):
        """stderr to a file, not a pipe: nobody reads a pipe while the test runs, and a full one blocks the
        collector."""
        self.log_path = self.lake.parent / f"collector-{self.port}.log"
        self.lake.parent.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "wb")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_until(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited ({self.process.returncode}): {self.log()[-2000:]}")
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; collector log: {self.log()[-2000:]}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_round_trip_health_metrics_and_graceful_stop(shipped_broker, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    collector = Collector(lake, shipped_broker.collector_url)
    config = fleet(devices=5, per_device=60)
    assert publish(monkeypatch, shipped_broker.gateway_url, config) == 300

    collector.wait_until(lambda: len(landed_keys(lake)) >= 300, "300 committed rows")
    assert sorted(landed_keys(lake)) == sorted(expected_keys(config))
    # Event dates decide the partition: the fleet starts at 23:59:30, so two days are landed.
    assert {p.name for p in (lake / "landing" / "device_telemetry").iterdir()} == {"date=2026-01-05", "date=2026-01-06"}
    assert hidden_files(lake) == []
    collector.wait_until(
        lambda: metric(collector.get("/metrics")[1], "lepton_collector_messages_acked_total") == 300, "acks"
    )
    status, body = collector.get("/metrics")
    assert metric(body, "lepton_collector_messages_committed_total") == 300
    assert metric(body, "lepton_collector_messages_received_total") == 300
    assert collector.get("/health")[0] == 200
    assert "collector-test-pw" not in body and "collector-test-pw" not in collector.get("/health")[1]
    assert collector.stop() == 0


def test_messages_published_while_collector_is_down_arrive_after_restart(shipped_broker, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    Collector(lake, shipped_broker.collector_url).stop()  # creates the persistent session
    config = fleet(devices=4, per_device=600, seed=2)  # 2,400: more than Mosquitto's default queue of 1,000
    publish(monkeypatch, shipped_broker.gateway_url, config)
    assert landed_keys(lake) == []

    collector = Collector(lake, shipped_broker.collector_url)
    collector.wait_until(lambda: len(set(landed_keys(lake))) >= 2400, "backlog committed")
    assert set(landed_keys(lake)) == expected_keys(config)
    assert collector.stop() == 0


def test_collector_killed_hard_mid_stream_loses_nothing(shipped_broker, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    collector = Collector(lake, shipped_broker.collector_url)
    config = fleet(devices=10, per_device=1000, seed=3)
    publisher = threading.Thread(target=publish, args=(monkeypatch, shipped_broker.gateway_url, config))
    publisher.start()
    collector.wait_until(lambda: len(landed_keys(lake)) >= 500, "first commits")
    collector.kill()  # SIGKILL: no flush, no clean disconnect
    landed_at_kill = len(set(landed_keys(lake)))
    publisher.join(timeout=120)
    assert landed_at_kill < 10_000, "the kill must happen mid-stream for this test to mean anything"

    collector = Collector(lake, shipped_broker.collector_url)  # the lease of the dead process is taken over
    collector.wait_until(lambda: len(set(landed_keys(lake))) >= 10_000, "everything committed after restart")
    keys = landed_keys(lake)
    assert set(keys) == expected_keys(config) and len(set(keys)) == 10_000
    assert collector.stop() == 0


def _settings(**overrides) -> MqttSettings:
    return MqttSettings.model_validate({**SETTINGS.model_dump(), "drain_idle_seconds": 1.0, **overrides})


def test_drain_killed_hard_mid_stream_then_rerun_loses_nothing(shipped_broker, tmp_path, monkeypatch):
    lake_dir = tmp_path / "lake"
    address = parse_mqtt_url(shipped_broker.collector_url)
    first = drain(Lake(str(lake_dir)), address, _settings())  # creates the session; nothing queued yet
    assert first.stopped_by == "idle" and first.counters.received == 0

    config = fleet(devices=10, per_device=1000, seed=4)
    publish(monkeypatch, shipped_broker.gateway_url, config)
    code = (
        "import sys; from lepton_pipelines.iot.drain import drain; from lepton_pipelines.lake.store import Lake;"
        "from lepton_pipelines.iot.connection import parse_mqtt_url;"
        "from lepton_pipelines.connectors.mqtt import MqttSettings;"
        "drain(Lake(sys.argv[1]), parse_mqtt_url(sys.argv[2]), MqttSettings(batch_max_messages=100, "
        "receive_maximum=200))"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(lake_dir), shipped_broker.collector_url], cwd=REPO)
    deadline = time.monotonic() + 60
    while len(landed_keys(lake_dir)) < 300 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=10)
    assert 0 < len(set(landed_keys(lake_dir))) < 10_000, "the kill must happen mid-drain"

    second = drain(Lake(str(lake_dir)), address, _settings())
    assert second.stopped_by == "idle"
    keys = landed_keys(lake_dir)
    assert set(keys) == expected_keys(config) and len(set(keys)) == 10_000
    assert second.counters.acked == second.counters.received


def test_drain_bounds_by_max_messages_and_leaves_the_rest_queued(shipped_broker, tmp_path, monkeypatch):
    lake_dir = tmp_path / "lake"
    address = parse_mqtt_url(shipped_broker.collector_url)
    drain(Lake(str(lake_dir)), address, _settings())
    config = fleet(devices=2, per_device=500, seed=5)
    publish(monkeypatch, shipped_broker.gateway_url, config)

    bounded = drain(Lake(str(lake_dir)), address, _settings(batch_max_messages=100), max_messages=400)
    assert bounded.stopped_by == "max_messages" and bounded.counters.received == 400
    assert bounded.counters.batches >= 4  # micro-batches of at most 100
    assert len(set(landed_keys(lake_dir))) == 400
    rest = drain(Lake(str(lake_dir)), address, _settings())
    assert set(landed_keys(lake_dir)) == expected_keys(config)
    assert rest.counters.received == 600


def test_malformed_payloads_are_quarantined_with_raw_bytes(shipped_broker, tmp_path, monkeypatch):
    lake_dir = tmp_path / "lake"
    address = parse_mqtt_url(shipped_broker.collector_url)
    drain(Lake(str(lake_dir)), address, _settings())
    bad_seq = b'{"device_id": "dev-1", "ts": "2026-01-05T00:00:00Z", "seq": "7"}'
    bad = {
        b"\xff\xfe not json": "not JSON",
        b'{"device_id": "dev-1", "ts": "2026-01-05T00:00:00Z"}': "missing required field(s): seq",
        bad_seq: "seq must be a non-negative integer",
        b'{"device_id": "dev-1", "ts": 1767571200, "seq": 8, "temperature": "hot"}': (
            "field 'temperature' must be a finite number"
        ),
        b'{"device_id": "dev-1", "ts": 1767571200, "seq": 9, "x": "'
        + b"y" * 70_000
        + b'"}': "payload is 70059 bytes; at most 65536",
    }
    good = b'{"device_id": "dev-1", "ts": 1767571200, "seq": 10, "temperature": 21.5}'
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("lepton-gateway", "gateway-test-pw")
    client.connect("127.0.0.1", shipped_broker.port)
    client.loop_start()
    for payload in [*bad, good]:
        client.publish("lepton/devices/dev-1/telemetry", payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()

    result = drain(Lake(str(lake_dir)), address, _settings())
    assert (result.counters.committed, result.counters.quarantined, result.counters.acked) == (1, 5, 6)
    assert landed_keys(lake_dir) == [("dev-1", 10)]
    # Unified quarantine schema, under the data partition: the date of the payload's ts when usable
    # (1767571200 = 2026-01-05), else the receive date (the unparsable payload).
    folder = lake_dir / "quarantine" / "device_telemetry"
    files = sorted(folder.glob("date=*/landing-*.parquet"))
    rows = {path.parent.name: pq.read_table(path).to_pylist() for path in files}
    today = f"date={datetime.now(UTC).date().isoformat()}"
    assert {name: len(r) for name, r in rows.items()} == {"date=2026-01-05": 4, today: 1}
    table = pq.read_table(files[0])
    assert table.column_names[:7] == ["_stage", "_reason", "_rule", "_check", "_source_file", "_source_line", "_raw"]
    assert {"device_id", "ts", "seq", "temperature", "_topic", "_received_at"} <= set(table.column_names)
    by_payload = {decode_raw(row["_raw"]): row for group in rows.values() for row in group}
    assert set(by_payload) == set(bad)
    for payload, reason in bad.items():
        row = by_payload[payload]
        assert reason in row["_reason"] and row["_stage"] == "landing" and row["_rule"] is None
        assert (
            row["_topic"] == "lepton/devices/dev-1/telemetry"
            and row["_source_file"] == "mqtt:lepton/devices/dev-1/telemetry"
        )
        assert row["device_id"] == "dev-1"
    assert by_payload[b"\xff\xfe not json"]["_raw"].startswith("base64:")  # not UTF-8
    assert by_payload[bad_seq]["_raw"] == bad_seq.decode() and by_payload[bad_seq]["seq"] == "7"  # landed text
    # Acknowledged means gone from the broker: a rerun finds nothing.
    assert drain(Lake(str(lake_dir)), address, _settings()).counters.received == 0


def test_wrong_password_is_a_clear_error_without_the_secret(shipped_broker, tmp_path):
    address = parse_mqtt_url(shipped_broker.url("lepton-collector", "wrong-secret"))
    with pytest.raises(ConnectionRefusedError) as error:
        drain(Lake(str(tmp_path / "lake")), address, _settings(), max_seconds=10)
    assert "refused" in str(error.value) and "wrong-secret" not in str(error.value)


def test_drop_check_fails_when_the_default_queue_overflows(default_broker, tmp_path, monkeypatch):
    lake_dir = tmp_path / "lake"
    monkeypatch.setenv("TEST_MQTT_URL", default_broker.url())
    resources = {"lake": LakeResource(url=str(lake_dir)), "mqtt": MqttBrokerResource(url_env_var="TEST_MQTT_URL")}
    drain(Lake(str(lake_dir)), parse_mqtt_url(default_broker.url()), _settings())  # session exists, now offline

    baseline = broker_dropped_messages(**resources)
    assert baseline.passed

    publish(monkeypatch, default_broker.url(), fleet(devices=3, per_device=500, seed=6))  # 1,500 > 1,000 queued
    time.sleep(2.5)  # $SYS is published every second by this broker
    failed = broker_dropped_messages(**resources)
    assert not failed.passed
    assert failed.metadata["dropped_since_last_check"] == dg.IntMetadataValue(500)
    assert "dropped 500" in failed.description

    assert broker_dropped_messages(**resources).passed  # no new drops since that check
