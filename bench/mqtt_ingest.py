"""MQTT ingest benchmark: the collector's commit-then-ack loop vs bare paho subscribers, same run.

    .venv/bin/python bench/mqtt_ingest.py [--messages 100000] [--latency-messages 20000] [--latency-rate 2000]

1. Throughput. A broker started from ``deployments/mosquitto/mosquitto.conf`` (free loopback port).
   Every consumer is measured the same way: its persistent MQTT v5 session is created (QoS 1
   subscription, Receive Maximum 1000), N QoS 1 messages are queued for it while it is offline by four
   parallel ``mosquitto_pub -l`` publishers (so the publisher is never the bottleneck), then it
   connects and the time until the last message is counted; afterwards its session is ended so no
   other phase pays for a queue it never drains. Consumers, in this order:
   - bare ``loop_forever``: paho's own loop, auto-ack, counts messages and nothing else;
   - bare burst loop: the same auto-acking paho client driven by the external loop the collector
     uses (several packets per ``select``), so the collector's loop technique does not flatter it;
   - the collector (``SessionIngest``): parse, commit JSONL + fsync, then ack;
   - bare ``loop_forever`` again (load on this shared machine moves; each bare figure is printed).
   The ratio is taken against the fastest bare figure. Loss = N − unique (device_id, seq) in landing.
2. Latency. The collector runs as its own process (``python -m lepton_pipelines.iot.collector``);
   a paced paho publisher stamps each payload with its send time (epoch ``ts``); publish → committed
   latency is the landing file's ctime (set by the rename that makes it visible to readers; the ack
   follows) minus that stamp. Use a rate the collector sustains: above it, latency measures the
   queue that builds up, not the collector. p50/p99 reported.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def _paho_client(client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("lepton-collector", COLLECTOR_PASSWORD)
    return client


def open_session(port: int, client_id: str) -> None:
    """Create the persistent session with its QoS 1 subscription, then go offline."""
    client = _paho_client(client_id)
    client.on_connect = lambda c, userdata, flags, rc, props: c.subscribe("lepton/devices/+/telemetry", qos=1)
    client.on_subscribe = lambda c, userdata, mid, reason_codes, props: c.disconnect()
    client.connect("127.0.0.1", port, clean_start=False, properties=persistent_session_properties(1000, 3600))
    client.loop_forever()


def end_session(port: int, client_id: str) -> None:
    """Clean start with session expiry 0: the broker forgets the session and anything still queued."""
    client = _paho_client(client_id)
    client.on_connect = lambda c, userdata, flags, rc, props: c.disconnect()
    client.connect("127.0.0.1", port, clean_start=True, properties=persistent_session_properties(1000, 0))
    client.loop_forever()


def bare_subscriber(port: int, client_id: str, expected: int, loop: str) -> float:
    """Drain the session's backlog with auto-acks, counting only; seconds from connect to the last
    message. ``loop``: ``forever`` (paho's ``loop_forever``) or ``burst`` (the collector's technique:
    select, then ``loop_read`` while packets keep coming, then ``loop_write``/``loop_misc``)."""
    count = {"n": 0, "last": 0.0}
    client = _paho_client(client_id)

    def on_message(c, userdata, message):
        count["n"] += 1
        if count["n"] >= expected:
            count["last"] = time.monotonic()
            c.disconnect()

    client.on_message = on_message
    started = time.monotonic()
    client.connect("127.0.0.1", port, clean_start=False, properties=persistent_session_properties(1000, 3600))
    if loop == "forever":
        client.loop_forever()
    else:
        while count["n"] < expected:
            sock = client.socket()
            readable, _, _ = select.select([sock], [sock] if client.want_write() else [], [], 0.05)
            if readable:
                for _ in range(SessionIngest.READ_BURST_PACKETS):
                    seen = count["n"]
                    client.loop_read()
                    if count["n"] == seen:
                        break
            if client.want_write():
                client.loop_write()
            client.loop_misc()
    return count["last"] - started


def collector_drain(port: int, lake: Lake, settings: MqttSettings, client_id: str, expected: int) -> float:
    """Drain the session's backlog with the collector's loop; seconds from connect to the last commit."""
    session = session_settings(settings, client_id)
    address = parse_mqtt_url(f"mqtt://lepton-collector:{COLLECTOR_PASSWORD}@127.0.0.1:{port}")
    ingest = SessionIngest(address, session, LandingCommitter(lake, "device_telemetry"), batch_policy(settings))
    started = time.monotonic()
    ingest.run(lambda i: i.counters.acked >= expected or time.monotonic() - started > 300)
    return (ingest.counters.last_commit_monotonic or time.monotonic()) - started


def measure(port: int, n: int, client_id: str, tag: str, drain) -> float:
    """The same protocol for every consumer: session, offline backlog, drain (timed), session ended."""
    open_session(port, client_id)
    queue_backlog(port, n, tag)
    seconds = drain(client_id)
    end_session(port, client_id)
    return seconds


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
        committed_at = path.stat().st_ctime  # the rename that published the file
        latencies += [committed_at - json.loads(line)["ts"] for line in path.read_bytes().splitlines()]  # ts: epoch, as sent
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=20_000)
    parser.add_argument("--latency-rate", type=float, default=2_000)
    args = parser.parse_args()
    from definitions_timing import report_definitions_import

    report_definitions_import()
    n = args.messages - args.messages % PUBLISHERS
    _, settings = load_source_settings(REPO / "lepton_pipelines" / "sources" / "registry" / "device_telemetry.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        port = free_port()
        broker = _start(shipped_config_for(tmp_path / "broker", port), port)
        try:
            lake_dir = tmp_path / "lake"
            lake = Lake(str(lake_dir))
            bare = [
                ("bare paho loop_forever (auto-ack, count only)",
                 measure(port, n, "bench-bare-1", "bare1", lambda cid: bare_subscriber(port, cid, n, "forever"))),
                ("bare paho burst loop (auto-ack, count only)",
                 measure(port, n, "bench-bare-2", "bare2", lambda cid: bare_subscriber(port, cid, n, "burst"))),
            ]
            collector_seconds = measure(port, n, "bench-collector", "coll",
                                        lambda cid: collector_drain(port, lake, settings, cid, n))
            bare.append(("bare paho loop_forever, again", measure(
                port, n, "bench-bare-3", "bare3", lambda cid: bare_subscriber(port, cid, n, "forever"))))
            coll_unique = len([k for k in set(landed_keys(lake_dir)) if k[0].startswith("coll-")])

            latency_dir = tmp_path / "lake-latency"
            latencies = latency_phase(port, latency_dir, args.latency_messages, args.latency_rate)
            latency_keys = set(landed_keys(latency_dir))
        finally:
            _stop(broker)

    coll_rate = n / collector_seconds
    best_bare = max(n / seconds for _, seconds in bare)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    print(f"{n:,} QoS 1 messages per consumer, MQTT v5, queued offline by {PUBLISHERS}x mosquitto_pub -l")
    for label, seconds in bare:
        print(f"{label}: {n / seconds:,.0f} msgs/s ({seconds:.2f}s)")
    print(f"collector (parse, commit jsonl + fsync, then ack): {coll_rate:,.0f} msgs/s ({collector_seconds:.2f}s)")
    print(f"ratio collector / fastest bare: {coll_rate / best_bare:.2f} (target >= 0.70)")
    print(f"loss (throughput phase): {n - coll_unique} of {n:,} (unique device_id, seq in committed landing files)")
    print(f"latency publish -> committed ({len(latencies):,} msgs at {args.latency_rate:,.0f} msgs/s, collector process): "
          f"p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms; "
          f"loss {args.latency_messages - len(latency_keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
