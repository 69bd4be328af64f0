"""Real Mosquitto brokers for a test or a benchmark: the shipped config on a free loopback port.

Shared by ``lepton_pipelines_tests/iot`` and ``bench/mqtt_ingest.py`` (the benchmarks never import the tests).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "deployments" / "mosquitto"
COLLECTOR_PASSWORD = "collector-test-pw"
GATEWAY_PASSWORD = "gateway-test-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(config: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"mosquitto -c {config} did not listen on {port}")


def stop_broker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def shipped_config_for(tmp: Path, port: int, autosave_interval: int | None = None) -> Path:
    """The shipped config with paths moved into ``tmp``, a loopback port and 1 s $SYS updates
    (``autosave_interval``: replace the shipped one, e.g. to decide in a test when saves happen)."""
    text = (SHIPPED / "mosquitto.conf").read_text()
    if autosave_interval is not None:
        text, count = re.subn(r"(?m)^autosave_interval .*$", f"autosave_interval {autosave_interval}", text)
        assert count == 1, "shipped mosquitto.conf no longer sets autosave_interval"
    replacements = {
        r"(?m)^persistence_location .*$": f"persistence_location {tmp}/data/",
        r"(?m)^password_file .*$": f"password_file {tmp}/passwd",
        r"(?m)^acl_file .*$": f"acl_file {tmp}/acl",
        r"(?m)^listener 1883$": f"listener {port} 127.0.0.1",
        r"(?m)^sys_interval .*$": "sys_interval 1",
        r"(?m)^log_dest .*$": f"log_dest file {tmp}/mosquitto.log",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        assert count == 1, f"shipped mosquitto.conf no longer has a line matching {pattern}"
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "acl").write_text((SHIPPED / "acl").read_text())
    env = {**os.environ, "LEPTON_MQTT_COLLECTOR_PASSWORD": COLLECTOR_PASSWORD, "LEPTON_MQTT_GATEWAY_PASSWORD": GATEWAY_PASSWORD}
    subprocess.run(["sh", str(SHIPPED / "create-passwd.sh"), str(tmp / "passwd")], env=env, check=True, capture_output=True)
    config = tmp / "mosquitto.conf"
    config.write_text(text + keep_root_user())
    return config


def keep_root_user() -> str:
    """Started as root, Mosquitto switches to user ``mosquitto``, which cannot read pytest's private tmp dirs."""
    return "\nuser root\n" if os.geteuid() == 0 else ""


def landed_keys(lake_dir: Path) -> list[tuple[str, int]]:
    """Every (device_id, seq) in committed landing files, duplicates included."""
    keys = []
    for path in sorted((lake_dir / "landing" / "device_telemetry").glob("date=*/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            keys.append((record["device_id"], record["seq"]))
    return keys
