"""MQTT ingest benchmark: the collector's commit-then-ack loop vs bare paho subscribers, same run.

    .venv/bin/python bench/mqtt_ingest.py [--messages 100000] [--latency-messages 20000] [--latency-rate 2000]

1. Throughput. A broker started from ``deployments/mosquitto/mosquitto.conf`` (free loopback port).
   Every consumer is measured the same way: its persistent MQTT v5 session is created (QoS 1
   subscription, the source YAML's Receive Maximum), N QoS 1 messages are queued for it while it is offline by four
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
3. Broker crash. A fresh broker from the shipped config (its own ``autosave_interval``); the collector
   process connects and the bench waits for the broker's first save (the session on disk). A paced
   paho publisher (QoS 1, reconnecting, resending what was not acknowledged) sends
   ``--kill-messages`` over 20 devices; a third of the way in the broker gets ``kill -9`` and is
   restarted from its persistence folder. Loss = messages the broker acknowledged to the publisher
   that are missing from landing (target 0). Recovery = from the restart until the collector is
   subscribed again, and until its next commit of new messages.
4. Autosave cost. The throughput protocol of phase 1 for the collector on brokers differing only in
   ``autosave_interval`` (``--autosave`` list): the offline backlog drained is what each save rewrites,
   so this is the worst case for frequent saves. Reported as msgs/s and as a ratio to the first value.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lepton_pipelines.connectors.mqtt import MqttSettings  # noqa: E402
from lepton_pipelines.contract.documents import shipped_source_file  # noqa: E402
from lepton_pipelines.iot.collector import batch_policy, load_source_settings, session_settings  # noqa: E402
from lepton_pipelines.iot.committer import LandingCommitter  # noqa: E402
from lepton_pipelines.iot.connection import parse_mqtt_url, persistent_session_properties  # noqa: E402
from lepton_pipelines.iot.ingest import SessionIngest  # noqa: E402
from lepton_pipelines.iot.local_broker import (  # noqa: E402  (same adaptation of the shipped config as the tests)
    free_port,
    landed_keys,
    publish_command,
    start_broker,
    stop_broker,
    write_local_config,
)
from lepton_pipelines.lake.store import Lake  # noqa: E402

PUBLISHERS = 4
SOURCE_FILE = shipped_source_file("device_telemetry")
# Every consumer gets the collector's in-flight window (Receive Maximum), so bare figures are comparable.
WINDOW = load_source_settings(SOURCE_FILE)[1].receive_maximum
# Users of the throwaway brokers this bench starts; not secrets of any real broker.
COLLECTOR_PASSWORD = "bench-collector-pw"
GATEWAY_PASSWORD = "bench-gateway-pw"


def queue_backlog(port: int, messages: int, tag: str) -> float:
    """N messages from PUBLISHERS parallel ``mosquitto_pub -l`` processes (one device each)."""
    per = messages // PUBLISHERS
    started = time.monotonic()
    processes = []
    for p in range(PUBLISHERS):
        device = f"{tag}-{p}"
        lines = "".join(
            json.dumps(
                {
                    "device_id": device,
                    "ts": 1767571200 + i / 1000,
                    "seq": i,
                    "temperature": 20 + (i % 50) / 10,
                    "humidity": 45.5,
                    "vibration": 0.05,
                    "battery": 88.0,
                },
                separators=(",", ":"),
            )
            + "\n"
            for i in range(per)
        )
        process = subprocess.Popen(
            publish_command(port, device, GATEWAY_PASSWORD),
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
    client.connect("127.0.0.1", port, clean_start=False, properties=persistent_session_properties(WINDOW, 3600))
    client.loop_forever()


def end_session(port: int, client_id: str) -> None:
    """Clean start with session expiry 0: the broker forgets the session and anything still queued."""
    client = _paho_client(client_id)
    client.on_connect = lambda c, userdata, flags, rc, props: c.disconnect()
    client.connect("127.0.0.1", port, clean_start=True, properties=persistent_session_properties(WINDOW, 0))
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
    client.connect("127.0.0.1", port, clean_start=False, properties=persistent_session_properties(WINDOW, 3600))
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


def start_collector(port: int, lake_dir: Path, client_id: str, log_level: str) -> tuple[subprocess.Popen, int]:
    """The collector service as deployed (``python -m lepton_pipelines.iot.collector``) against the broker on
    ``port``, landing into ``lake_dir``; returns the process and its HTTP port (``/ready``, ``/metrics``)."""
    http_port = free_port()
    env = {
        **os.environ,
        "LEPTON_MQTT_URL": f"mqtt://lepton-collector:{COLLECTOR_PASSWORD}@127.0.0.1:{port}",
        "LEPTON_LAKE_URL": str(lake_dir),
        "LEPTON_LOG_LEVEL": log_level,
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "lepton_pipelines.iot.collector", "--http-host", "127.0.0.1"]
    command += ["--http-port", str(http_port), "--client-id", client_id]
    return subprocess.Popen(command, cwd=REPO, env=env), http_port


def latency_phase(port: int, lake_dir: Path, messages: int, rate: float) -> list[float]:
    collector, http_port = start_collector(port, lake_dir, "bench-latency", "WARNING")
    assert wait_ready(http_port), "collector did not become ready"  # the session must exist before we publish
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
        latencies += [
            committed_at - json.loads(line)["ts"] for line in path.read_bytes().splitlines()
        ]  # ts: epoch, as sent
    return latencies


def wait_ready(http_port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def collector_metric(http_port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=1) as response:
            text = response.read().decode()
    except OSError:
        return float("nan")
    line = next(line for line in text.splitlines() if line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def broker_kill_phase(tmp_path: Path, messages: int, rate: float, devices: int = 20) -> dict:
    """Kill -9 the broker a third of the way through a paced stream; see the module docstring (phase 3)."""
    port = free_port()
    config = write_local_config(tmp_path / "kill-broker", port, COLLECTOR_PASSWORD, GATEWAY_PASSWORD)
    broker = start_broker(config, port)
    database = tmp_path / "kill-broker" / "data" / "mosquitto.db"
    lake_dir = tmp_path / "lake-kill"
    collector, http_port = start_collector(port, lake_dir, "bench-kill", "ERROR")
    result: dict = {}
    try:
        assert wait_ready(http_port), "collector did not become ready"
        session_at = time.time()
        save_wait = time.monotonic()
        while not (database.exists() and database.stat().st_mtime > session_at) and time.monotonic() - save_wait < 120:
            time.sleep(0.05)  # the broker's own autosave, not a forced one
        result["waited_for_first_save_s"] = time.monotonic() - save_wait

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-kill-publisher", protocol=mqtt.MQTTv5)
        client.username_pw_set("lepton-gateway", GATEWAY_PASSWORD)
        client.max_inflight_messages_set(100)
        client.reconnect_delay_set(min_delay=0.1, max_delay=1)

        acked_mids: set[int] = set()  # PUBACK received: the broker took responsibility for the message
        # No lock: set.add is atomic, and a lock held around publish() deadlocks with paho's callback thread.
        client.on_publish = lambda c, userdata, mid, reason_code, properties: (
            None if reason_code.is_failure else acked_mids.add(mid)
        )
        client.connect("127.0.0.1", port)
        client.loop_start()
        kill_at = messages // 3
        started = time.monotonic()
        infos = []
        for i in range(messages):
            device, seq = f"kill-{i % devices}", i // devices
            payload = json.dumps(
                {"device_id": device, "ts": 1767571200 + seq, "seq": seq, "temperature": 21.0}
            ).encode()
            infos.append(((device, seq), client.publish(f"lepton/devices/{device}/telemetry", payload, qos=1)))
            if i == kill_at:
                committed_before = collector_metric(http_port, "lepton_collector_messages_committed_total")
                broker.kill()
                broker.wait(10)
                killed = time.monotonic()
                broker = start_broker(config, port)
                restarted = time.monotonic()
                result["broker_restart_s"] = restarted - killed
                watcher = threading.Thread(target=_watch_recovery, args=(http_port, restarted, result), daemon=True)
                watcher.start()
            ahead = (i + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        deadline = time.monotonic() + 120
        assert messages < 65535, "message ids would repeat"
        while len(acked_mids) < messages and time.monotonic() < deadline:
            time.sleep(0.1)
        acked = {key for key, info in infos if info.mid in acked_mids}
        client.disconnect()
        client.loop_stop()
        deadline = time.monotonic() + 120
        while not acked <= set(landed_keys(lake_dir)) and time.monotonic() < deadline:
            time.sleep(0.2)
        watcher.join(timeout=60)
        landed = landed_keys(lake_dir)
        result.update(
            published=messages,
            broker_acked=len(acked),
            landed_unique=len(set(landed)),
            duplicates=len(landed) - len(set(landed)),
            loss=len(acked - set(landed)),
            unacked_by_broker=messages - len(acked),
            committed_without_ack=collector_metric(http_port, "lepton_collector_committed_without_ack_total"),
            sessions_lost=collector_metric(http_port, "lepton_collector_sessions_lost_total"),
            committed_before_kill=committed_before,
        )
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
        stop_broker(broker)
    return result


def _watch_recovery(http_port: int, restarted: float, result: dict) -> None:
    """Time from the broker's restart until the collector is subscribed again, then until it commits new data."""
    if not wait_ready(http_port, timeout=60):
        return
    result["resubscribed_after_s"] = time.monotonic() - restarted
    base = collector_metric(http_port, "lepton_collector_messages_committed_total")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if collector_metric(http_port, "lepton_collector_messages_committed_total") > base:
            result["committing_again_after_s"] = time.monotonic() - restarted
            return
        time.sleep(0.02)


def autosave_phase(
    tmp_path: Path, n: int, settings: MqttSettings, intervals: list[int]
) -> tuple[list[tuple[int, float]], float]:
    """Phase 4: collector drain throughput on brokers that differ only in ``autosave_interval``, and the
    time one save of an ``n``-message offline backlog takes (median of 3 forced saves, SIGUSR1):
    Mosquitto is single-threaded, so that is how long the broker serves nobody at each autosave."""
    rates = []
    save_seconds: list[float] = []
    for interval in intervals:
        port = free_port()
        folder = tmp_path / f"autosave-{interval}"
        config = write_local_config(folder, port, COLLECTOR_PASSWORD, GATEWAY_PASSWORD, autosave_interval=interval)
        broker = start_broker(config, port)
        try:
            lake = Lake(str(tmp_path / f"lake-autosave-{interval}"))
            client_id = f"bench-autosave-{interval}"
            open_session(port, client_id)
            queue_backlog(port, n, f"as{interval}")
            if not save_seconds:
                save_seconds = [_timed_save(broker, folder / "data" / "mosquitto.db") for _ in range(3)]
            seconds = collector_drain(port, lake, settings, client_id, n)
            end_session(port, client_id)
            rates.append((interval, n / seconds))
        finally:
            stop_broker(broker)
    return rates, statistics.median(save_seconds) if save_seconds else float("nan")


def _timed_save(broker: subprocess.Popen, database: Path) -> float:
    before = database.stat().st_mtime_ns if database.exists() else 0
    started = time.monotonic()
    broker.send_signal(signal.SIGUSR1)
    while not (database.exists() and database.stat().st_mtime_ns != before) and time.monotonic() - started < 60:
        time.sleep(0.002)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=20_000)
    parser.add_argument("--latency-rate", type=float, default=2_000)
    parser.add_argument("--kill-messages", type=int, default=20_000)
    parser.add_argument("--kill-rate", type=float, default=2_000)
    parser.add_argument(
        "--autosave", default="30,5,1", help="autosave_interval values to compare (phase 4); empty: skip"
    )
    parser.add_argument("--skip-throughput", action="store_true", help="phases 3 and 4 only")
    args = parser.parse_args()
    from definitions_timing import report_definitions_import

    report_definitions_import()
    n = args.messages - args.messages % PUBLISHERS
    _, settings = load_source_settings(SOURCE_FILE)
    intervals = [int(v) for v in args.autosave.split(",") if v.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if not args.skip_throughput:
            throughput_phases(tmp_path, n, settings, args)
        kill = broker_kill_phase(tmp_path, args.kill_messages, args.kill_rate)
        autosave, save_seconds = autosave_phase(tmp_path, n, settings, intervals) if intervals else ([], float("nan"))
    print(
        f"broker kill -9 mid-stream ({kill['published']:,} msgs at {args.kill_rate:,.0f} msgs/s over 20 devices, "
        "shipped "
        f"autosave_interval {shipped_autosave()} s; first save awaited {kill['waited_for_first_save_s']:.1f} s): "
        f"loss {kill['loss']} of {kill['broker_acked']:,} broker-acknowledged (target 0); "
        f"{kill['unacked_by_broker']} never acknowledged; {kill['duplicates']} duplicate(s) for clean to remove; "
        f"{kill['committed_without_ack']:.0f} held message(s) committed without ack; sessions lost "
        f"{kill['sessions_lost']:.0f}"
    )
    print(
        f"recovery: broker restart {kill.get('broker_restart_s', float('nan')):.2f} s, collector subscribed again "
        f"{kill.get('resubscribed_after_s', float('nan')):.2f} s and committing new messages "
        f"{kill.get('committing_again_after_s', float('nan')):.2f} s after the restart"
    )
    if autosave:
        base = autosave[0][1]
        print(
            "autosave cost (collector draining a "
            + f"{n:,}-message offline backlog): "
            + "; ".join(
                f"autosave_interval {interval} s: {rate:,.0f} msgs/s ({rate / base:.2f}x)"
                for interval, rate in autosave
            )
        )
        print(
            f"one save with {n:,} messages queued: {save_seconds * 1000:.0f} ms (the broker is blocked meanwhile: "
            + ", ".join(
                f"{save_seconds / interval:.1%} of the time at autosave_interval {interval} s"
                for interval, _ in autosave
            )
            + " while such a backlog exists)"
        )
    return 0


def shipped_autosave() -> str:
    for line in (REPO / "deployments" / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.startswith("autosave_interval"):
            return line.split()[1]
    return "?"


def throughput_phases(tmp_path: Path, n: int, settings: MqttSettings, args) -> None:
    """Phases 1 and 2 (see the module docstring), printed as they finish."""
    port = free_port()
    broker = start_broker(write_local_config(tmp_path / "broker", port, COLLECTOR_PASSWORD, GATEWAY_PASSWORD), port)
    try:
        lake_dir = tmp_path / "lake"
        lake = Lake(str(lake_dir))
        bare = [
            (
                "bare paho loop_forever (auto-ack, count only)",
                measure(port, n, "bench-bare-1", "bare1", lambda cid: bare_subscriber(port, cid, n, "forever")),
            ),
            (
                "bare paho burst loop (auto-ack, count only)",
                measure(port, n, "bench-bare-2", "bare2", lambda cid: bare_subscriber(port, cid, n, "burst")),
            ),
        ]
        collector_seconds = measure(
            port, n, "bench-collector", "coll", lambda cid: collector_drain(port, lake, settings, cid, n)
        )
        bare.append(
            (
                "bare paho loop_forever, again",
                measure(port, n, "bench-bare-3", "bare3", lambda cid: bare_subscriber(port, cid, n, "forever")),
            )
        )
        coll_unique = len([k for k in set(landed_keys(lake_dir)) if k[0].startswith("coll-")])

        latency_dir = tmp_path / "lake-latency"
        latencies = latency_phase(port, latency_dir, args.latency_messages, args.latency_rate)
        latency_keys = set(landed_keys(latency_dir))
    finally:
        stop_broker(broker)

    coll_rate = n / collector_seconds
    best_bare = max(n / seconds for _, seconds in bare)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    print(f"{n:,} QoS 1 messages per consumer, MQTT v5, queued offline by {PUBLISHERS}x mosquitto_pub -l")
    for label, seconds in bare:
        print(f"{label}: {n / seconds:,.0f} msgs/s ({seconds:.2f}s)")
    print(f"collector (parse, commit jsonl + fsync, then ack): {coll_rate:,.0f} msgs/s ({collector_seconds:.2f}s)")
    print(f"ratio collector / fastest bare: {coll_rate / best_bare:.2f} (target >= 0.80)")
    print(f"loss (throughput phase): {n - coll_unique} of {n:,} (unique device_id, seq in committed landing files)")
    print(
        f"latency publish -> committed ({len(latencies):,} msgs at {args.latency_rate:,.0f} msgs/s, collector "
        "process): "
        f"p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms; "
        f"loss {args.latency_messages - len(latency_keys)}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
