"""``lepton-simulate``: realistic telemetry for N devices, with the faults real fleets produce.

Deterministic for a seed (same seed → same payloads, same faults), so demos and tests are
reproducible. Faults: spikes (a reading jumps far out of range), gaps (a message is never sent, so
``seq`` skips), missing readings (a field is null), duplicates (the same message twice, as after a
device retry), malformed payloads (not JSON, missing fields, wrong types, oversized), and devices
going offline half-way through.

Two outputs: publish to the broker (QoS 1, ``LEPTON_MQTT_URL``) or — for offline demos without a
broker — write straight into the landing zone through the collector's own commit code.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lepton_pipelines.iot.payloads import DEFAULT_MAX_PAYLOAD_BYTES, parse_telemetry, telemetry_topic

MALFORMED_KINDS = ("not_json", "missing_seq", "wrong_type", "oversized")


@dataclass(frozen=True)
class SimulatorConfig:
    devices: int = 10
    messages_per_device: int = 60
    interval_seconds: float = 1.0  # between two messages of one device (event time)
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    seed: int = 0
    device_prefix: str = "sim"
    spike_rate: float = 0.0
    gap_rate: float = 0.0
    missing_rate: float = 0.0
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0
    offline_devices: int = 0  # the last N devices stop sending half-way through
    firmware: str = "1.4.2"


@dataclass(frozen=True)
class SimulatedMessage:
    topic: str
    payload: bytes
    kind: str  # "ok", "spike", "missing", "duplicate" or "malformed:<why>"
    device_id: str
    seq: int | None
    sent_at: datetime | None = None  # event time of the message: when the device sent it


def device_ids(config: SimulatorConfig) -> list[str]:
    return [f"{config.device_prefix}-{index:04d}" for index in range(config.devices)]


def generate(config: SimulatorConfig) -> Iterator[SimulatedMessage]:
    """Messages in event-time order (round-robin over devices)."""
    rng = random.Random(config.seed)
    ids = device_ids(config)
    offline_from = (
        {d: config.messages_per_device // 2 for d in ids[len(ids) - config.offline_devices :]}
        if config.offline_devices
        else {}
    )
    phase = {d: rng.uniform(0, 2 * math.pi) for d in ids}
    base_temp = {d: rng.uniform(15, 30) for d in ids}
    for step in range(config.messages_per_device):
        moment = config.start + timedelta(seconds=step * config.interval_seconds)
        for device in ids:
            if step >= offline_from.get(device, config.messages_per_device):
                continue
            if rng.random() < config.gap_rate:
                continue
            topic = telemetry_topic(device)
            if rng.random() < config.malformed_rate:
                kind = rng.choice(MALFORMED_KINDS)
                yield SimulatedMessage(
                    topic, _malformed(kind, device, moment, step), f"malformed:{kind}", device, None, moment
                )
                continue
            body = {
                "device_id": device,
                "ts": moment.isoformat().replace("+00:00", "Z"),
                "seq": step,
                "temperature": round(
                    base_temp[device] + 4 * math.sin(step / 30 + phase[device]) + rng.gauss(0, 0.3), 3
                ),
                "humidity": round(
                    min(100.0, max(0.0, 50 + 10 * math.sin(step / 45 + phase[device]) + rng.gauss(0, 1))), 2
                ),
                "vibration": round(rng.lognormvariate(-3, 0.4), 5),
                "battery": round(max(0.0, 100 - 0.01 * step - rng.uniform(0, 0.05)), 3),
                "firmware": config.firmware,
            }
            kind = "ok"
            if rng.random() < config.spike_rate:
                body["temperature"] = round(body["temperature"] + rng.choice((-1, 1)) * rng.uniform(80, 150), 3)
                kind = "spike"
            elif rng.random() < config.missing_rate:
                body[rng.choice(("temperature", "humidity", "vibration"))] = None
                kind = "missing"
            payload = json.dumps(body, separators=(",", ":")).encode()
            yield SimulatedMessage(topic, payload, kind, device, step, moment)
            if rng.random() < config.duplicate_rate:
                yield SimulatedMessage(topic, payload, "duplicate", device, step, moment)


def _malformed(kind: str, device: str, moment: datetime, step: int) -> bytes:
    if kind == "not_json":
        return f"{device} temp=21.5 seq={step}".encode()
    if kind == "missing_seq":
        return json.dumps({"device_id": device, "ts": moment.isoformat(), "temperature": 21.5}).encode()
    if kind == "wrong_type":
        return json.dumps(
            {"device_id": device, "ts": moment.isoformat(), "seq": str(step), "temperature": "hot"}
        ).encode()
    return json.dumps(
        {"device_id": device, "ts": moment.isoformat(), "seq": step, "blob": "x" * DEFAULT_MAX_PAYLOAD_BYTES}
    ).encode()


def write_to_landing(
    lake, config: SimulatorConfig, source: str = "device_telemetry", batch_messages: int = 5000
) -> dict[str, int]:
    """Offline mode: the collector's parse + commit path without a broker (same files, same quarantine),
    as if the collector had received each message when the device sent it — so a simulated day lands
    (and quarantines even payloads without a usable ``ts``) in that day's partition."""
    from lepton_pipelines.iot.committer import LandingCommitter, PendingBatch

    committer, batch = LandingCommitter(lake, source, fsync=False), PendingBatch()
    totals = {"messages": 0, "committed": 0, "quarantined": 0, "files": 0}

    def flush() -> None:
        result = committer.commit(batch)
        totals["committed"] += result.telemetry_count
        totals["quarantined"] += result.quarantined_count
        totals["files"] += len(result.files)

    for index, message in enumerate(generate(config)):
        received_at = message.sent_at or datetime.now(UTC)
        batch.add(
            parse_telemetry(message.topic, message.payload, received_at),
            message.topic,
            message.payload,
            received_at,
            index,
        )
        totals["messages"] += 1
        if len(batch) >= batch_messages:
            flush()
            batch = PendingBatch()
    if len(batch):
        flush()
    return totals


def publish(config: SimulatorConfig, rate_per_second: float | None = None, client_id: str = "") -> int:
    """Publish every generated message with QoS 1 and wait for the broker's PUBACKs.

    ``rate_per_second`` paces the total flow (None: as fast as the broker accepts, with a bounded
    number of unacknowledged publishes so memory stays flat)."""
    import paho.mqtt.client as mqtt

    from lepton_pipelines.iot.connection import broker_from_env, new_session_client

    address = broker_from_env()
    client = new_session_client(address, client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port, keepalive=30, clean_start=True)
    client.loop_start()
    sent, started, pending = 0, time.monotonic(), []
    try:
        for message in generate(config):
            pending.append(client.publish(message.topic, message.payload, qos=1))
            sent += 1
            if len(pending) >= 5000:
                for info in pending:
                    info.wait_for_publish(timeout=60)
                pending.clear()
            if rate_per_second:
                ahead = sent / rate_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        for info in pending:
            info.wait_for_publish(timeout=60)
        unacked = [info for info in pending if info.rc != mqtt.MQTT_ERR_SUCCESS or not info.is_published()]
        if unacked:
            raise RuntimeError(f"{len(unacked)} message(s) were not acknowledged by {address.display}")
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lepton-simulate", description="Publish (or land) simulated device telemetry."
    )
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--messages-per-device", type=int, default=60)
    parser.add_argument(
        "--interval-seconds", type=float, default=1.0, help="event-time spacing of one device's messages"
    )
    parser.add_argument("--start", default=None, help="event time of the first message, ISO-8601 (default: now)")
    parser.add_argument(
        "--rate", type=float, default=None, help="total messages per second when publishing (default: max)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device-prefix", default="sim")
    for fault in ("spike", "gap", "missing", "duplicate", "malformed"):
        parser.add_argument(f"--{fault}-rate", type=float, default=0.0, help=f"probability of a {fault} per message")
    parser.add_argument("--offline-devices", type=int, default=0, help="devices that stop half-way")
    parser.add_argument(
        "--to-landing", action="store_true", help="write to the lake's landing zone instead of the broker"
    )
    parser.add_argument("--lake", default=None, help="lake URL for --to-landing (default: LEPTON_LAKE_URL)")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC).replace(microsecond=0)
    config = SimulatorConfig(
        devices=args.devices,
        messages_per_device=args.messages_per_device,
        interval_seconds=args.interval_seconds,
        start=start if start.tzinfo else start.replace(tzinfo=UTC),
        seed=args.seed,
        device_prefix=args.device_prefix,
        spike_rate=args.spike_rate,
        gap_rate=args.gap_rate,
        missing_rate=args.missing_rate,
        duplicate_rate=args.duplicate_rate,
        malformed_rate=args.malformed_rate,
        offline_devices=args.offline_devices,
    )
    if args.to_landing:
        from lepton_pipelines.lake.store import Lake

        print(json.dumps(write_to_landing(Lake(args.lake), config)))
    else:
        print(json.dumps({"published": publish(config, args.rate)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
