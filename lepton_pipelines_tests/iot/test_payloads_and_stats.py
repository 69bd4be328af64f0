"""Pure logic: payload validation, batch policy, broker drop arithmetic, device registry and status."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from lepton_pipelines.connectors.mqtt import MqttSettings
from lepton_pipelines.iot import devices
from lepton_pipelines.iot.broker_stats import BrokerObservation, apply_sys_message, drop_increase, drops_since
from lepton_pipelines.iot.committer import BatchPolicy, PendingBatch
from lepton_pipelines.iot.connection import parse_mqtt_url
from lepton_pipelines.iot.payloads import Rejected, Telemetry, parse_telemetry
from lepton_pipelines.iot.simulator import SimulatorConfig, generate

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
TOPIC = "lepton/devices/d1/telemetry"


def parse(body, topic=TOPIC, max_bytes=65536):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_telemetry(topic, payload, NOW, max_bytes)


def test_valid_payloads_normalise_ts_and_keep_readings():
    iso = parse({"device_id": "d1", "ts": "2026-01-05T23:59:59+01:00", "seq": 3, "temperature": 21.5, "battery": None})
    epoch = parse({"device_id": "d1", "ts": 1767657599.5, "seq": 4})
    assert isinstance(iso, Telemetry) and isinstance(epoch, Telemetry)
    assert iso.record["ts"] == "2026-01-05T22:59:59.000000+00:00" and iso.event_date == "2026-01-05"
    assert epoch.event_date == "2026-01-05" and iso.record["temperature"] == 21.5
    assert iso.record["_topic"] == TOPIC and iso.record["_received_at"].startswith("2026-01-05T12:00")


@pytest.mark.parametrize(
    "body, topic, reason",
    [
        (b"not json", TOPIC, "not JSON"),
        ([1, 2], TOPIC, "must be a JSON object"),
        ({"device_id": "d1", "ts": 1767657599}, TOPIC, "missing required field(s): seq"),
        ({"device_id": "d1", "ts": 1767657599, "seq": True}, TOPIC, "seq must be a non-negative integer"),
        ({"device_id": "d1", "ts": 1767657599000, "seq": 1}, TOPIC, "milliseconds"),
        ({"device_id": "d1", "ts": "yesterday", "seq": 1}, TOPIC, "not ISO-8601"),
        ({"device_id": "d2", "ts": 1767657599, "seq": 1}, TOPIC, "does not match the topic's device 'd1'"),
        ({"device_id": "d1", "ts": 1767657599, "seq": 1, "humidity": "50%"}, TOPIC, "field 'humidity' must be a finite number"),
        ({"device_id": "d1", "ts": 1767657599, "seq": 1, "_topic": "x"}, TOPIC, "reserved for lineage"),
        ({"device_id": "d1", "ts": 1767657599, "seq": 1}, "lepton/devices/d1/status", "is not of the form"),
        ({"device_id": "d1", "ts": 1767657599, "seq": 1, "pad": "x" * 200}, TOPIC, "at most 100 bytes"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(body, topic, reason):
    result = parse(body, topic, max_bytes=100)
    assert isinstance(result, Rejected) and reason in result.reason


def test_batch_is_due_by_count_bytes_or_age():
    batch = PendingBatch()
    policy = BatchPolicy(max_messages=2, max_bytes=10_000, max_age_seconds=5)
    good = parse({"device_id": "d1", "ts": 1767657599, "seq": 1})
    batch.add(good, TOPIC, b"{}", NOW, (1, 1))
    assert not batch.is_due(policy, now=batch.opened_at + 1)
    assert batch.is_due(policy, now=batch.opened_at + 5)
    batch.add(good, TOPIC, b"{}", NOW, (2, 1))
    assert batch.is_full(policy)
    big = PendingBatch()
    big.add(good, TOPIC, b"x" * 10_000, NOW, (3, 1))
    assert big.is_full(policy)


def test_settings_refuse_a_batch_larger_than_the_inflight_window():
    with pytest.raises(ValueError, match="must not exceed receive_maximum"):
        MqttSettings(receive_maximum=100, batch_max_messages=500)


def test_mqtt_url_parsing_keeps_secrets_out_of_display():
    address = parse_mqtt_url("mqtts://user%40x:p%2Fw@broker.example:8884", {"LEPTON_MQTT_CA_FILE": "/ca.pem"})
    assert (address.username, address.password, address.port, address.tls, address.ca_file) == ("user@x", "p/w", 8884, True, "/ca.pem")
    assert "p/w" not in address.display and "p/w" not in repr(address)
    with pytest.raises(ValueError, match="LEPTON_MQTT_URL"):
        parse_mqtt_url("http://broker:1883")


def test_drop_increase_handles_broker_restarts():
    obs = lambda dropped, uptime: BrokerObservation("b", "t", dropped=dropped, uptime_seconds=uptime)  # noqa: E731
    assert drop_increase(obs(10, 100), obs(15, 110)) == 5
    assert drop_increase(obs(10, 100), obs(3, 5)) == 3  # restarted: counter began again at 0
    assert drops_since(None, [obs(0, 1), obs(4, 2), obs(4, 3), obs(1, 1)]) == 5
    updated = apply_sys_message(obs(0, 1), "$SYS/broker/publish/messages/dropped", b"500")
    assert updated.dropped == 500
    assert apply_sys_message(updated, "$SYS/broker/uptime", b"42 seconds").uptime_seconds == 42


def test_simulator_is_deterministic_and_injects_faults():
    config = SimulatorConfig(devices=5, messages_per_device=200, seed=7, spike_rate=0.02, gap_rate=0.02,
                             duplicate_rate=0.02, malformed_rate=0.02, offline_devices=1)
    first, second = list(generate(config)), list(generate(config))
    assert first == second
    kinds = {m.kind.split(":")[0] for m in first}
    assert {"ok", "spike", "duplicate", "malformed"} <= kinds
    offline = [m for m in first if m.device_id == "sim-0004"]
    assert max(m.seq for m in offline if m.seq is not None) < 100
    for message in first:
        parsed = parse_telemetry(message.topic, message.payload, NOW)
        assert isinstance(parsed, Rejected) == message.kind.startswith("malformed")


def test_registry_errors_name_file_entry_and_field():
    with pytest.raises(devices.RegistryError, match=r"reg.yaml: devices\[1\]: unknown field\(s\) colour"):
        devices.parse_registry("devices:\n  - {id: a}\n  - {id: b, colour: red}\n", "reg.yaml")
    with pytest.raises(devices.RegistryError, match="declared twice"):
        devices.parse_registry("device_id,site\na,x\na,y\n", "reg.csv")


def test_devices_merge_registry_and_discovery_and_status_thresholds():
    registry = devices.parse_registry(
        "devices:\n  - {id: a, type: thermo, site: plant-1, owner: ops, firmware: '2.0'}\n  - {id: never, site: plant-2}\n", "r.yaml"
    )
    ts = lambda minutes: pd.Timestamp(NOW - timedelta(minutes=minutes))  # noqa: E731
    telemetry = pd.DataFrame({
        "device_id": ["a", "a", "a", "stranger"],
        "ts": [ts(90), ts(30), ts(5), ts(20)],
        "temperature": [20.0, None, 21.0, 19.0],
        "humidity": [50.0, 50.0, 50.0, None],
        "vibration": [0.1, 0.1, 0.1, 0.1],
        "battery": [99.0, 98.0, 97.5, 50.0],
        "firmware": ["1.0", "1.0", "1.1", "0.9"],
    })
    table = devices.build_devices(registry, devices.summarize_sightings(telemetry))
    by_id = table.set_index("device_id")
    assert list(table["device_id"]) == ["a", "never", "stranger"]
    assert by_id.loc["stranger", "registered"] == False and by_id.loc["a", "registered"] == True  # noqa: E712
    assert by_id.loc["a", "firmware"] == "2.0" and by_id.loc["stranger", "firmware"] == "0.9"
    assert by_id.loc["a", "first_seen"] == ts(90) and by_id.loc["a", "last_seen"] == ts(5)

    status = devices.device_status(table, telemetry, pd.Series({"a": 2}), NOW, timedelta(minutes=15), timedelta(minutes=60))
    s = status.set_index("device_id")
    assert s.loc["a", "status"] == "online" and s.loc["stranger", "status"] == "offline" and s.loc["never", "status"] == "never_seen"
    assert s.loc["a", "messages_in_window"] == 2 and s.loc["a", "messages_per_minute"] == pytest.approx(2 / 60)
    assert s.loc["a", "battery"] == 97.5 and s.loc["a", "quarantined_messages"] == 2 and s.loc["a", "missing_readings"] == 1
    # Exactly at the threshold still counts as online; one second past is offline.
    edge = devices.device_status(table, telemetry, pd.Series(dtype="int64"), NOW + timedelta(minutes=10), timedelta(minutes=15), timedelta(minutes=60))
    assert edge.set_index("device_id").loc["a", "status"] == "online"
    past = devices.device_status(table, telemetry, pd.Series(dtype="int64"), NOW + timedelta(minutes=10, seconds=1), timedelta(minutes=15), timedelta(minutes=60))
    assert past.set_index("device_id").loc["a", "status"] == "offline"
