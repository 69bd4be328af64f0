"""Pure logic: payload validation, batch policy, broker drop arithmetic, device registry and status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lepton_pipelines.cleaning import coerce_to_schema
from lepton_pipelines.connectors.base import FetchRequest
from lepton_pipelines.connectors.mqtt import MqttSettings
from lepton_pipelines.iot import devices
from lepton_pipelines.iot.broker_stats import BrokerObservation, apply_sys_message, drop_increase, drops_since
from lepton_pipelines.iot.collector import SHIPPED_SOURCE_FILE
from lepton_pipelines.iot.committer import BatchPolicy, LandingCommitter, PendingBatch
from lepton_pipelines.iot.connection import parse_mqtt_url
from lepton_pipelines.iot.payloads import Rejected, Telemetry, parse_telemetry
from lepton_pipelines.iot.simulator import SimulatorConfig, generate
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.sources.registry import load_source_file

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TOPIC = "lepton/devices/d1/telemetry"


def parse(body, topic=TOPIC, max_bytes=65536):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_telemetry(topic, payload, NOW, max_bytes)


def landed(result):
    """The landed line as a record, asserting it is exactly one JSON Lines line."""
    assert isinstance(result, Telemetry), result
    assert result.line.endswith(b"\n") and result.line.count(b"\n") == 1 and b"\r" not in result.line
    return json.loads(result.line)


def test_valid_payloads_land_as_sent_with_lineage_and_a_utc_date_partition():
    """ts lands in the device's own form (the raw asset's coercion makes it a UTC timestamp), but the
    date= partition is always the UTC date."""
    iso = parse({"device_id": "d1", "ts": "2026-01-05T23:59:59-01:00", "seq": 3, "temperature": 21.5, "battery": None})
    epoch = parse({"device_id": "d1", "ts": 1767657599.5, "seq": 4})
    naive = parse({"device_id": "d1", "ts": "2026-01-05T10:00:00", "seq": 5})
    record = landed(iso)
    assert record["ts"] == "2026-01-05T23:59:59-01:00" and iso.event_date == "2026-01-06"
    assert landed(epoch)["ts"] == 1767657599.5 and epoch.event_date == "2026-01-05"
    assert landed(naive)["ts"] == "2026-01-05T10:00:00" and naive.event_date == "2026-01-05"
    assert record["temperature"] == 21.5 and record["battery"] is None
    assert record["_topic"] == TOPIC and record["_received_at"] == "2026-01-05T12:00:00.000000+00:00"


@pytest.mark.parametrize("epoch", [946_684_800, 1767657599.999999, 1767657600, 1767657600.000001, 4_102_444_799.25])
def test_epoch_ts_partitions_by_the_same_utc_date_as_datetime(epoch):
    result = parse({"device_id": "d1", "ts": epoch, "seq": 1})
    assert result.event_date == datetime.fromtimestamp(epoch, UTC).date().isoformat()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"temperature":21.5}',
        b'{"device_id":"d1","ts":1767607200.25,"seq":1,"big":123456789012345678901234567890,"e":-1.5E-7}',
        b'  {\n  "device_id" : "d1",\r\n\t"ts": "2026-01-05T10:00:00+00:00",\n  "seq": 2 \n}\n\r\n  ',
        '{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":3,"note":"café 温度 \U0001f321 \u2028","esc":"a\\nb '
        '\\"q\\" }"}'.encode(),
        b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":4,"site":{"rack":{"slot":[1,{"x":null}]}},"tags":[]}',
        b'{"device_id":"d1","seq":5,"temperature":1e2,"ts":"2026-01-05T10:00:00Z"}',
    ],
    ids=["compact", "epoch-and-odd-numbers", "pretty-printed-crlf", "unicode-and-escapes", "nested", "ts-last"],
)
def test_utc_payloads_land_as_received_with_lineage_spliced_in(payload):
    """The payload's own bytes are kept; lineage is added; the line stays one valid JSON object."""
    result = parse(payload)
    record = landed(result)
    original = json.loads(payload)
    assert record == {**original, "_topic": TOPIC, "_received_at": "2026-01-05T12:00:00.000000+00:00"}
    assert result.event_date == "2026-01-05"
    if b"\n" not in payload.strip():
        assert result.line.startswith(payload.rstrip()[:-1])  # byte for byte, not re-serialised


def test_lineage_is_json_escaped_for_awkward_topics():
    topic = 'lepton/devices/d"\\é/telemetry'
    result = parse_telemetry(
        topic, json.dumps({"device_id": 'd"\\é', "ts": "2026-01-05T10:00:00Z", "seq": 1}).encode(), NOW
    )
    assert landed(result)["_topic"] == topic


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"[1, 2]", "must be a JSON object, got array"),
        (b'"d1"', "must be a JSON object, got string"),
        (b"42", "must be a JSON object, got number"),
        (b"null", "must be a JSON object, got null"),
        (b"", "payload is empty (0 bytes)"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"x":NaN}', "not JSON"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"temperature":1e999}', "not JSON"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"note":"line\nbreak"}', "not JSON"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"note":"\xff"}', "not JSON"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1} {"seq":2}', "not JSON"),
        (b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"\\u005ftopic":"spoof"}', "reserved for lineage"),
        (b'{"device_id":"d1","ts":true,"seq":1}', "got boolean"),
        (b'{"device_id":"d1","ts":"0001-01-01T00:00:00+01:00","seq":1}', "out of range"),
    ],
)
def test_payloads_that_cannot_land_as_one_object_line_are_rejected(payload, reason):
    result = parse(payload)
    assert isinstance(result, Rejected) and reason in result.reason, result


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
        (
            {"device_id": "d1", "ts": 1767657599, "seq": 1, "humidity": "50%"},
            TOPIC,
            "field 'humidity' must be a finite number",
        ),
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
    assert (address.username, address.password, address.port, address.tls, address.ca_file) == (
        "user@x",
        "p/w",
        8884,
        True,
        "/ca.pem",
    )
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
    config = SimulatorConfig(
        devices=5,
        messages_per_device=200,
        seed=7,
        spike_rate=0.02,
        gap_rate=0.02,
        duplicate_rate=0.02,
        malformed_rate=0.02,
        offline_devices=1,
    )
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
        "devices:\n  - {id: a, type: thermo, site: plant-1, owner: ops, firmware: '2.0'}\n  - {id: never, site: "
        "plant-2}\n",
        "r.yaml",
    )
    ts = lambda minutes: pd.Timestamp(NOW - timedelta(minutes=minutes))  # noqa: E731
    telemetry = pd.DataFrame(
        {
            "device_id": ["a", "a", "a", "stranger"],
            "ts": [ts(90), ts(30), ts(5), ts(20)],
            "temperature": [20.0, None, 21.0, 19.0],
            "humidity": [50.0, 50.0, 50.0, None],
            "vibration": [0.1, 0.1, 0.1, 0.1],
            "battery": [99.0, 98.0, 97.5, 50.0],
            "firmware": ["1.0", "1.0", "1.1", "0.9"],
        }
    )
    table = devices.build_devices(registry, devices.summarize_sightings(telemetry))
    by_id = table.set_index("device_id")
    assert list(table["device_id"]) == ["a", "never", "stranger"]
    assert by_id.loc["stranger", "registered"] == False and by_id.loc["a", "registered"] == True  # noqa: E712
    assert by_id.loc["a", "firmware"] == "2.0" and by_id.loc["stranger", "firmware"] == "0.9"
    assert by_id.loc["a", "first_seen"] == ts(90) and by_id.loc["a", "last_seen"] == ts(5)

    status = devices.device_status(
        table, telemetry, pd.Series({"a": 2}), NOW, timedelta(minutes=15), timedelta(minutes=60)
    )
    s = status.set_index("device_id")
    assert (
        s.loc["a", "status"] == "online"
        and s.loc["stranger", "status"] == "offline"
        and s.loc["never", "status"] == "never_seen"
    )
    assert s.loc["a", "messages_in_window"] == 2 and s.loc["a", "messages_per_minute"] == pytest.approx(2 / 60)
    assert (
        s.loc["a", "battery"] == 97.5
        and s.loc["a", "quarantined_messages"] == 2
        and s.loc["a", "missing_readings"] == 1
    )
    # Exactly at the threshold still counts as online; one second past is offline.
    edge = devices.device_status(
        table,
        telemetry,
        pd.Series(dtype="int64"),
        NOW + timedelta(minutes=10),
        timedelta(minutes=15),
        timedelta(minutes=60),
    )
    assert edge.set_index("device_id").loc["a", "status"] == "online"
    past = devices.device_status(
        table,
        telemetry,
        pd.Series(dtype="int64"),
        NOW + timedelta(minutes=10, seconds=1),
        timedelta(minutes=15),
        timedelta(minutes=60),
    )
    assert past.set_index("device_id").loc["a", "status"] == "offline"


def test_landed_lines_read_back_through_the_device_source_as_utc_timestamps(tmp_path):
    """Spliced lines with ts in every accepted form are what the raw asset reads: one row each, ts a
    UTC timestamp, lineage columns present, nothing rejected."""
    source, problems = load_source_file(SHIPPED_SOURCE_FILE)
    assert source is not None and not problems
    lake = Lake(str(tmp_path / "lake"))
    batch = PendingBatch()
    payloads = [
        b'{"device_id":"d1","ts":"2026-01-05T10:00:00Z","seq":1,"temperature":21.5}',
        b'{\n  "device_id": "d1",\n  "ts": 1767607200.5,\n  "seq": 2\n}\n',
        b'{"device_id":"d1","ts":"2026-01-05T11:00:00+01:00","seq":3,"firmware":"1.\xc3\xa9"}',
        b'{"device_id":"d1","ts":"2026-01-05T10:00:03","seq":4,"humidity":40}',
    ]
    for index, payload in enumerate(payloads):
        batch.add(parse(payload), TOPIC, payload, NOW, (index, 1))
    LandingCommitter(lake, source.spec.name, fsync=False).commit(batch)

    fetched = source.connector.fetch(FetchRequest(source=source.spec.name, partition_key="2026-01-05", lake=lake))
    frame = coerce_to_schema(fetched.records, source.table).frame.sort_values("seq")
    assert len(fetched.rejects) == 0
    assert [str(ts) for ts in frame["ts"]] == [
        "2026-01-05 10:00:00+00:00",
        "2026-01-05 10:00:00.500000+00:00",
        "2026-01-05 10:00:00+00:00",
        "2026-01-05 10:00:03+00:00",
    ]
    assert set(frame["_topic"]) == {TOPIC} and frame["firmware"].iloc[2] == "1.é"
