"""MQTT ingest benchmark: the collector's commit-then-ack loop vs a bare paho subscriber, same run.

    .venv/bin/python bench/mqtt_ingest.py [--messages 100000] [--latency-messages 20000] [--latency-rate 5000]

1. Throughput. A broker started from ``deployments/mosquitto/mosquitto.conf`` (free loopback port).
   For each consumer a persistent session is created, then N QoS 1 messages are queued for it by
   four parallel ``mosquitto_pub -l`` publishers (so the publisher is never the bottleneck), then the
   consumer connects and the time until the last message is counted (bare: received and auto-acked;
   collector: committed to landing files and acked) gives msgs/s. Both consumers use the same paho
   version, MQTT v5 and ``loop()`` machinery. Loss = N − unique (device_id, seq) in landing files.
2. Latency. The collector runs as its own process (``python -m lepton_pipelines.iot.collector``);
   a paced paho publisher stamps each payload with its send time; publish → committed latency is the
   landing file's mtime minus that stamp. p50/p99 reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lepton_pipelines.connectors.mqtt import MqttSettings  # noqa: E402
from lepton_pipelines.iot.collector import batch_policy, load_source_settings, session_settings  # noqa: E402
from lepton_pipelines.iot.committer import LandingCommitter  # noqa: E402
from lepton_pipelines.iot.connection import parse_mqtt_url, persistent_session_properties  # noqa: E402
from lepton_pipelines.iot.ingest import SessionIngest  # noqa: E402
from lepton_pipelines.lake.store import Lake  # noqa: E402
from lepton_pipelines_tests.iot.conftest import (  # noqa: E402  (same adaptation of the shipped config as the tests)
    COLLECTOR_PASSWORD,
    GATEWAY_PASSWORD,
    _start,
    _stop,
    free_port,
    landed_keys,
    shipped_config_for,
)

PUBLISHERS = 4


def queue_backlog(port: int, messages: int, tag: str) -> float:
    """N messages from PUBLISHERS parallel ``mosquitto_pub -l`` processes (one device each)."""
    per = messages // PUBLISHERS
    started = time.monotonic()
    processes = []
    for p in range(PUBLISHERS):
        device = f"{tag}-{p}"
        lines = "".join(
            json.dumps({"device_id": device, "ts": 1767571200 + i / 1000, "seq": i, "temperature": 20 + (i % 50) / 10,
                        "humidity": 45.5, "vibration": 0.05, "battery": 88.0}, separators=(",", ":")) + "\n"
            for i in range(per)
        )
        process = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", "lepton-gateway", "-P", GATEWAY_PASSWORD,
             "-q", "1", "-V", "mqttv5", "-t", f"lepton/devices/{device}/telemetry", "-l"],
            stdin=subprocess.PIPE,
        )
        processes.append((process, lines))
    for process, lines in processes:
        process.communicate(lines.encode())
    return time.monotonic() - started


def bare_subscriber(port: int, client_id: str, expected: int | None) -> float:
    """Create (expected None) or drain the session with paho's own ``loop_forever`` (its fastest
    loop here) and auto-acks; return seconds from connect to the last message."""
    count = {"n": 0, "last": 0.0}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("lepton-collector", COLLECTOR_PASSWORD)

    def on_connect(c, userdata, flags, rc, props):
        c.subscribe("lepton/devices/+/telemetry", qos=1)

    def on_subscribe(c, userdata, mid, reason_codes, props):
        if expected is None:
            c.disconnect()

    def on_message(c, userdata, message):
        count["n"] += 1
        if count["n"] >= (expected or 0):
            count["last"] = time.monotonic()
            c.disconnect()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    started = time.monotonic()
    client.connect("127.0.0.1", port, clean_start=False, properties=persistent_session_properties(1000, 3600))
    client.loop_forever()
    return count["last"] - started if expected else 0.0


def collector_drain(port: int, lake: Lake, settings: MqttSettings, client_id: str, expected: int | None) -> float:
    session = session_settings(settings, client_id)
    address = parse_mqtt_url(f"mqtt://lepton-collector:{COLLECTOR_PASSWORD}@127.0.0.1:{port}")
    ingest = SessionIngest(address, session, LandingCommitter(lake, "device_telemetry"), batch_policy(settings))
    started = time.monotonic()
    if expected is None:
        ingest.run(lambda i: i.counters.subscribed)
        return 0.0
    ingest.run(lambda i: i.counters.acked >= expected or time.monotonic() - started > 300)
    return (ingest.counters.last_commit_monotonic or time.monotonic()) - started


def latency_phase(port: int, lake_dir: Path, messages: int, rate: float) -> list[float]:
    http_port = free_port()
    env = {**os.environ, "LEPTON_MQTT_URL": f"mqtt://lepton-collector:{COLLECTOR_PASSWORD}@127.0.0.1:{port}",
           "LEPTON_LAKE_URL": str(lake_dir), "LEPTON_LOG_LEVEL": "WARNING"}
    collector = subprocess.Popen([sys.executable, "-m", "lepton_pipelines.iot.collector", "--http-host", "127.0.0.1",
                                  "--http-port", str(http_port), "--client-id", "bench-latency"], cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the session must exist before we publish
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("lepton-gateway", GATEWAY_PASSWORD)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.monotonic()
    infos = []
    for i in range(messages):
        payload = json.dumps({"device_id": "lat-0", "ts": time.time(), "seq": i, "temperature": 21.0}).encode()
        infos.append(client.publish("lepton/devices/lat-0/telemetry", payload, qos=1))
        ahead = (i + 1) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 120
    while len(set(landed_keys(lake_dir))) < messages and time.monotonic() < deadline:
        time.sleep(0.2)
    collector.terminate()
    collector.wait(30)
    latencies = []
    for path in (lake_dir / "landing" / "device_telemetry").glob("date=*/*.jsonl"):
        committed_at = path.stat().st_mtime
        latencies += [committed_at - datetime.fromisoformat(json.loads(line)["ts"]).timestamp() for line in path.read_text().splitlines()]
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=20_000)
    parser.add_argument("--latency-rate", type=float, default=5_000)
    args = parser.parse_args()
    n = args.messages - args.messages % PUBLISHERS
    _, settings = load_source_settings(REPO / "lepton_pipelines" / "sources" / "registry" / "device_telemetry.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        port = free_port()
        broker = _start(shipped_config_for(tmp_path / "broker", port), port)
        try:
            lake_dir = tmp_path / "lake"
            lake = Lake(str(lake_dir))
            # Same volume for both: each session exists before its own backlog and only drains that.
            bare_subscriber(port, "bench-bare", None)
            publish_seconds = queue_backlog(port, n, "bare")
            bare_seconds = bare_subscriber(port, "bench-bare", n)
            collector_drain(port, lake, settings, "bench-collector", None)
            queue_backlog(port, n, "coll")  # the bare session queues these too; it is never drained again
            collector_seconds = collector_drain(port, lake, settings, "bench-collector", n)
            landed = set(landed_keys(lake_dir))
            coll_unique = len([k for k in landed if k[0].startswith("coll-")])

            latency_dir = tmp_path / "lake-latency"
            latencies = latency_phase(port, latency_dir, args.latency_messages, args.latency_rate)
            latency_keys = set(landed_keys(latency_dir))
        finally:
            _stop(broker)

    bare_rate, coll_rate = n / bare_seconds, n / collector_seconds
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    print(f"publishers: {PUBLISHERS}× mosquitto_pub -l, {n:,} QoS 1 messages queued in {publish_seconds:.2f}s ({n / publish_seconds:,.0f} msgs/s)")
    print(f"bare paho subscriber (count only, auto-ack): {n:,} in {bare_seconds:.2f}s = {bare_rate:,.0f} msgs/s")
    print(f"collector (parse, commit jsonl + fsync, then ack): {n:,} in {collector_seconds:.2f}s = {coll_rate:,.0f} msgs/s")
    print(f"ratio collector / bare: {coll_rate / bare_rate:.2f} (target >= 0.70)")
    print(f"loss (throughput phase): {n - coll_unique} of {n:,} (unique device_id, seq in committed landing files)")
    print(f"latency publish -> committed ({len(latencies):,} msgs at {args.latency_rate:,.0f} msgs/s, collector process): "
          f"p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms; "
          f"loss {args.latency_messages - len(latency_keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
