"""Mosquitto itself killed with ``kill -9``, a foreign publisher (``mosquitto_pub``), and the real pipeline.

* With a saved session, nothing the collector already received may be lost: it commits what it holds
  when the connection drops, and clean removes the redelivered duplicates.
* Before the first save the broker forgets the session, and what devices publish until the collector
  subscribes again is dropped without any broker counter moving: the ``device_seq_gaps`` check on
  governed must fail naming the devices and the missing ranges, and the collector reports the lost
  session as an event and a metric.
* A retained message lands once however often the collector reconnects; clearing it is not a bad payload.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from lepton_pipelines.iot.definitions import SOURCE_FILE
from lepton_pipelines.iot.sessions import session_events
from lepton_pipelines.lake.store import Lake
from lepton_pipelines_tests.iot.conftest import (
    Broker,
    _start,
    _stop,
    fleet_records,
    free_port,
    landed_keys,
    mosquitto_pub,
    run_pipeline,
    shipped_config_for,
    zone,
)
from lepton_pipelines_tests.iot.test_collector_broker import Collector, metric

pytestmark = pytest.mark.timeout(300)

DEVICES = 20


@pytest.fixture
def manual_save_broker(tmp_path):
    """The shipped config, but saving only when the test says so (SIGUSR1) or on a graceful stop —
    so "the last save" is a known moment instead of a race with ``autosave_interval``."""
    port = free_port()
    config = shipped_config_for(tmp_path / "broker", port, autosave_interval=3600)
    broker = Broker(port, _start(config, port), config)
    yield broker
    _stop(broker.process)


def database(broker: Broker) -> Path:
    return broker.config.parent / "data" / "mosquitto.db"


def holding_source_file(tmp_path: Path, **connector) -> Path:
    """The shipped source YAML with batch limits that make the collector hold messages for a while."""
    document = yaml.safe_load(SOURCE_FILE.read_text())  # a component file: the source's fields under attributes
    document["attributes"]["connector"].update(connector)
    path = tmp_path / "device_telemetry.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def today_start() -> tuple[int, str]:
    day = datetime.now(UTC).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()), day.isoformat()


def publish_fleet(port: int, records: dict[str, list[dict]]) -> None:
    """One ``mosquitto_pub`` process per device, in parallel; returns when every one exited 0."""
    errors: list[BaseException] = []

    def one(device: str, rows: list[dict]) -> None:
        try:
            mosquitto_pub(port, device, rows)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=item) for item in records.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors


def seq_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == "device_seq_gaps")


def test_broker_killed_with_a_saved_session_loses_nothing_the_collector_held(manual_save_broker, tmp_path):
    broker, lake_dir = manual_save_broker, tmp_path / "lake"
    start, partition = today_start()
    # Commit only every 60 s (or 1,000 messages): whatever arrives is held by the collector when the broker dies.
    source_file = holding_source_file(tmp_path, batch_max_age_seconds=60, batch_max_messages=1000, receive_maximum=1000)
    collector = Collector(lake_dir, broker.collector_url, source_file)
    broker.save(database(broker))  # the saved session: subscription included, no messages yet

    first = fleet_records(DEVICES, range(0, 40), start)  # 800 messages, fewer than a batch
    publish_fleet(broker.port, first)  # every mosquitto_pub exited 0: the broker acknowledged all of them
    collector.wait_until(
        lambda: metric(collector.get("/metrics")[1], "lepton_collector_messages_received_total") == 800,
        "800 messages held by the collector",
    )
    assert landed_keys(lake_dir) == []  # held, not yet committed

    broker.kill()  # the broker's save has the session, not these 800 messages
    broker.restart()
    collector.wait_until(lambda: len(landed_keys(lake_dir)) == 800, "held messages committed on the lost connection")
    collector.wait_until(lambda: collector.get("/ready")[0] == 200, "reconnected")
    body = collector.get("/metrics")[1]
    assert metric(body, "lepton_collector_committed_without_ack_total") == 800
    assert (
        metric(body, "lepton_collector_session_present") == 1
        and metric(body, "lepton_collector_sessions_lost_total") == 0
    )

    second = fleet_records(DEVICES, range(40, 80), start)
    publish_fleet(broker.port, second)
    assert collector.stop() == 0  # SIGTERM: commits and acks the rest
    assert len(set(landed_keys(lake_dir))) == 1600

    result = run_pipeline(lake_dir, partition)
    assert result.success
    clean = zone(lake_dir, "clean", partition)
    keys = list(zip(clean["device_id"], clean["seq"], strict=True))
    assert len(keys) == len(set(keys)) == 1600  # zero loss, duplicates (if redelivered) removed
    assert set(keys) == {(r["device_id"], r["seq"]) for rows in [*first.values(), *second.values()] for r in rows}
    check = seq_check(result)
    assert check.passed and check.metadata["missing_messages"] == dg.IntMetadataValue(0)


def test_broker_killed_before_its_first_save_fails_the_gap_check_naming_devices_and_ranges(
    manual_save_broker, tmp_path
):
    broker, lake_dir = manual_save_broker, tmp_path / "lake"
    start, partition = today_start()
    collector = Collector(lake_dir, broker.collector_url)
    publish_fleet(broker.port, fleet_records(3, range(0, 50), start))
    collector.wait_until(lambda: len(landed_keys(lake_dir)) == 150, "first messages committed")
    assert collector.stop() == 0  # offline: the broker queues for the session — in memory only

    publish_fleet(broker.port, fleet_records(3, range(50, 80), start))  # queued, never saved
    broker.kill()
    broker.restart()  # no save file: the session and its queue are gone
    assert not database(broker).exists()
    publish_fleet(broker.port, fleet_records(3, range(80, 100), start))  # no session: dropped by the broker

    collector = Collector(lake_dir, broker.collector_url)
    publish_fleet(broker.port, fleet_records(3, range(100, 120), start))
    collector.wait_until(lambda: len(landed_keys(lake_dir)) == 210, "messages after the reconnect committed")
    body = collector.get("/metrics")[1]
    assert metric(body, "lepton_collector_sessions_lost_total") == 1
    assert metric(body, "lepton_collector_session_present") == 0
    assert collector.stop() == 0
    events = session_events(Lake(str(lake_dir)), "lepton-device-telemetry")
    assert [e["event"] for e in events] == ["session_lost"] and "secret" not in str(events)

    result = run_pipeline(lake_dir, partition)
    check = seq_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["missing_messages"] == dg.IntMetadataValue(3 * 50)
    assert check.metadata["missing_ranges"].value == {f"dev-{d}": "50-99" for d in range(3)}
    assert "dev-0: 50-99; dev-1: 50-99; dev-2: 50-99" in check.description
    assert check.metadata["broker_session_lost_events"].value == [events[0]["at"]]


def test_retained_message_lands_once_across_reconnects_and_an_empty_retained_clear_is_control(shipped_broker, tmp_path):
    lake_dir = tmp_path / "lake"
    start, _ = today_start()
    collector = Collector(lake_dir, shipped_broker.collector_url)
    retained = {"device_id": "dev-r", "ts": start + 5, "seq": 5, "temperature": 21.5}
    mosquitto_pub(shipped_broker.port, "dev-r", [retained], retain=True)
    collector.wait_until(lambda: landed_keys(lake_dir) == [("dev-r", 5)], "the retained message landed")
    for _ in range(3):  # three collector restarts: the session (and its subscription) persists
        assert collector.stop() == 0
        collector = Collector(lake_dir, shipped_broker.collector_url)
        collector.wait_until(
            lambda collector=collector: metric(collector.get("/metrics")[1], "lepton_collector_connected") == 1,
            "connected",
        )
    mosquitto_pub(
        shipped_broker.port, "dev-r", [{"device_id": "dev-r", "ts": start + 6, "seq": 6}]
    )  # a marker: later than any copy
    collector.wait_until(lambda: ("dev-r", 6) in landed_keys(lake_dir), "the marker landed")
    assert landed_keys(lake_dir) == [("dev-r", 5), ("dev-r", 6)]  # the retained message exactly once

    # Clearing it: an empty retained payload (mosquitto_pub -r -n) is a control message, not a bad payload.
    import subprocess

    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(shipped_broker.port),
            "-u",
            "lepton-gateway",
            "-P",
            "gateway-test-pw",
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-t",
            "lepton/devices/dev-r/telemetry",
            "-r",
            "-n",
        ],
        check=True,
        timeout=30,
    )
    collector.wait_until(
        lambda: metric(collector.get("/metrics")[1], "lepton_collector_retained_cleared_total") == 1, "clear seen"
    )
    collector.wait_until(
        lambda: metric(collector.get("/metrics")[1], "lepton_collector_messages_acked_total") >= 2, "clear acked"
    )
    assert collector.stop() == 0
    assert not (lake_dir / "quarantine").exists()
    assert landed_keys(lake_dir) == [("dev-r", 5), ("dev-r", 6)]
