"""Run Mosquitto on this machine with the shipped broker configuration (``deployments/mosquitto``).

Broker defaults lose data (1,000 queued messages per offline session, 20 in flight), so whoever
tries the collector locally should do it against the configuration production runs: persistent
sessions, no queue caps, the shipped ACL and a password file made by the shipped
``create-passwd.sh``. This module adapts that config for a loopback port and a private folder
(persistence, password file, ACL and log inside it; ``$SYS`` every second so drop counters move
quickly) and starts and stops the ``mosquitto`` process. The tests, the MQTT bench and developers
use the same adaptation, so a change to the shipped config is exercised everywhere at once.

Developers (passwords only from the environment, as in production)::

    LEPTON_MQTT_COLLECTOR_PASSWORD=... LEPTON_MQTT_GATEWAY_PASSWORD=... \\
        python -m lepton_pipelines.iot.local_broker [--port 18830] [--folder DIR]

No Dagster imports; needs the ``mosquitto`` and ``mosquitto_passwd`` binaries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHIPPED_BROKER_DIR = Path(__file__).resolve().parents[2] / "deployments" / "mosquitto"
COLLECTOR_USER = "lepton-collector"
GATEWAY_USER = "lepton-gateway"


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_local_config(
    folder: Path,
    port: int,
    collector_password: str,
    gateway_password: str | None = None,
    autosave_interval: int | None = None,
    shipped_dir: Path = SHIPPED_BROKER_DIR,
) -> Path:
    """Write the shipped config adapted to ``folder`` and ``127.0.0.1:port``; return its path.

    Paths (persistence, password file, ACL, log) move into ``folder``; ``$SYS`` updates every
    second. ``autosave_interval`` replaces the shipped value (e.g. to decide when saves happen).
    The password file is made by the shipped ``create-passwd.sh`` from the two passwords (the
    gateway user only when ``gateway_password`` is given). Raises ``ValueError`` naming the line
    when the shipped config no longer has a line this adaptation replaces.
    """
    shipped = shipped_dir / "mosquitto.conf"
    text = shipped.read_text()
    replacements = {
        r"(?m)^persistence_location .*$": f"persistence_location {folder}/data/",
        r"(?m)^password_file .*$": f"password_file {folder}/passwd",
        r"(?m)^acl_file .*$": f"acl_file {folder}/acl",
        r"(?m)^listener 1883$": f"listener {port} 127.0.0.1",
        r"(?m)^sys_interval .*$": "sys_interval 1",
        r"(?m)^log_dest .*$": f"log_dest file {folder}/mosquitto.log",
    }
    if autosave_interval is not None:
        replacements[r"(?m)^autosave_interval .*$"] = f"autosave_interval {autosave_interval}"
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        if count != 1:
            raise ValueError(
                f"{shipped}: expected exactly one line matching {pattern}, found {count}; update {__name__}"
            )
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "acl").write_text((shipped_dir / "acl").read_text())
    env = {**os.environ, "LEPTON_MQTT_COLLECTOR_PASSWORD": collector_password}
    env.pop("LEPTON_MQTT_GATEWAY_PASSWORD", None)
    env.pop("LEPTON_MQTT_DEVICE_PASSWORDS", None)
    if gateway_password is not None:
        env["LEPTON_MQTT_GATEWAY_PASSWORD"] = gateway_password
    subprocess.run(
        ["sh", str(shipped_dir / "create-passwd.sh"), str(folder / "passwd")], env=env, check=True, capture_output=True
    )
    config = folder / "mosquitto.conf"
    config.write_text(text + keep_root_user())
    return config


def keep_root_user() -> str:
    """Started as root, Mosquitto switches to user ``mosquitto``, which cannot read private temp folders."""
    return "\nuser root\n" if os.geteuid() == 0 else ""


def start_broker(config: Path, port: int, timeout: float = 10) -> subprocess.Popen:
    """Start ``mosquitto -c config`` and return once it accepts connections on ``127.0.0.1:port``."""
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"mosquitto -c {config} did not listen on {port} within {timeout}s (see its log_dest)")


def stop_broker(process: subprocess.Popen) -> None:
    """SIGTERM (the broker saves its database on the way out); SIGKILL if it has not exited in 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def publish_command(port: int, device: str, password: str, retain: bool = False) -> list[str]:
    """``mosquitto_pub`` as a field gateway: QoS 1, MQTT v5, one message per stdin line, to the device's
    telemetry topic as the gateway user (the shipped ACL lets it publish there)."""
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", "lepton-gateway", "-P", password]
    command += ["-q", "1", "-V", "mqttv5", "-t", f"lepton/devices/{device}/telemetry", "-l"]
    return [*command, "-r"] if retain else command


def landed_keys(lake_dir: Path, source: str = "device_telemetry") -> list[tuple[str, int]]:
    """Every (device_id, seq) in committed landing files of a local lake, duplicates included: the
    end-to-end check of a local run (what the broker accepted vs what the collector committed)."""
    keys = []
    for path in sorted((lake_dir / "landing" / source).glob("date=*/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            keys.append((record["device_id"], record["seq"]))
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lepton_pipelines.iot.local_broker",
        description="Run Mosquitto with the shipped config on a loopback port.",
    )
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--folder", type=Path, help="config, persistence and log folder (default: a new temp folder)")
    args = parser.parse_args(argv)
    collector_password = os.environ.get("LEPTON_MQTT_COLLECTOR_PASSWORD")
    if not collector_password:
        parser.error(
            "set LEPTON_MQTT_COLLECTOR_PASSWORD (password of user lepton-collector); "
            "LEPTON_MQTT_GATEWAY_PASSWORD adds user lepton-gateway for publishers"
        )
    folder = (args.folder or Path(tempfile.mkdtemp(prefix="lepton-broker-"))).resolve()
    port = args.port or free_port()
    config = write_local_config(
        folder, port, collector_password, os.environ.get("LEPTON_MQTT_GATEWAY_PASSWORD") or None
    )
    process = start_broker(config, port)
    print(
        f"mosquitto (shipped config) on 127.0.0.1:{port}, files in {folder}\n"
        f'  export LEPTON_MQTT_URL="mqtt://{COLLECTOR_USER}:$LEPTON_MQTT_COLLECTOR_PASSWORD@127.0.0.1:{port}"\n'
        "Ctrl-C stops it.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_broker(process)


if __name__ == "__main__":
    sys.exit(main())
