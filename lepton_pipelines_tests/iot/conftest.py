"""Real Mosquitto brokers for the IoT tests.

``shipped_broker`` runs ``deployments/mosquitto/mosquitto.conf`` (unlimited queue, 1000 in flight,
password file + ACL created by the shipped ``create-passwd.sh``) on a free loopback port;
``default_broker`` runs Mosquitto with Debian's default limits (1,000 queued messages) to prove that
the drop check catches what they lose.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deployments" / "mosquitto"
COLLECTOR_PASSWORD = "collector-test-pw"
GATEWAY_PASSWORD = "gateway-test-pw"


@dataclass
class Broker:
    port: int
    process: subprocess.Popen
    config: Path

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"mqtt://{auth}127.0.0.1:{self.port}"

    @property
    def collector_url(self) -> str:
        return self.url("lepton-collector", COLLECTOR_PASSWORD)

    @property
    def gateway_url(self) -> str:
        return self.url("lepton-gateway", GATEWAY_PASSWORD)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(config: Path, port: int) -> subprocess.Popen:
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


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def shipped_config_for(tmp: Path, port: int) -> Path:
    """The shipped config with paths moved into ``tmp``, a loopback port and 1 s $SYS updates."""
    text = (SHIPPED / "mosquitto.conf").read_text()
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
    config.write_text(text + _keep_root_user())
    return config


def _keep_root_user() -> str:
    """Started as root, Mosquitto switches to user ``mosquitto``, which cannot read pytest's private tmp dirs."""
    return "\nuser root\n" if os.geteuid() == 0 else ""


@pytest.fixture
def shipped_broker(tmp_path):
    port = free_port()
    config = shipped_config_for(tmp_path / "broker", port)
    broker = Broker(port, _start(config, port), config)
    yield broker
    _stop(broker.process)


@pytest.fixture
def default_broker(tmp_path):
    """Debian's limits (no max_queued_messages line → 1,000), anonymous, $SYS every second."""
    port = free_port()
    folder = tmp_path / "default-broker"
    folder.mkdir()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nsys_interval 1\n" + _keep_root_user())
    broker = Broker(port, _start(config, port), config)
    yield broker
    _stop(broker.process)


def landed_keys(lake_dir: Path) -> list[tuple[str, int]]:
    """Every (device_id, seq) in committed landing files, duplicates included."""
    keys = []
    for path in sorted((lake_dir / "landing" / "device_telemetry").glob("date=*/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            keys.append((record["device_id"], record["seq"]))
    return keys


def hidden_files(lake_dir: Path) -> list[Path]:
    return [p for p in (lake_dir / "landing").rglob(".*") if p.is_file()]
