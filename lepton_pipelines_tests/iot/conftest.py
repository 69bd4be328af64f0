"""Real Mosquitto brokers for the IoT tests.

``shipped_broker`` runs ``deployments/mosquitto/mosquitto.conf`` (unlimited queue, 1000 in flight,
password file + ACL created by the shipped ``create-passwd.sh``) on a free loopback port;
``default_broker`` runs Mosquitto with Debian's default limits (1,000 queued messages) to prove that
the drop check catches what they lose.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lepton_pipelines.iot.local_broker import (
    free_port,
    keep_root_user,
    landed_keys,  # noqa: F401  (the tests import it from here)
    publish_command,
    write_local_config,
)
from lepton_pipelines.iot.local_broker import start_broker as _start
from lepton_pipelines.iot.local_broker import stop_broker as _stop

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_PASSWORD = "collector-test-pw"
GATEWAY_PASSWORD = "gateway-test-pw"


@dataclass
class Broker:
    port: int
    process: subprocess.Popen
    config: Path

    def kill(self) -> None:
        """``kill -9``: no final save, exactly like a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again from the same config and persistence folder (what survived the last save)."""
        self.process = _start(self.config, self.port)

    def save(self, database: Path, timeout: float = 10) -> None:
        """Make the broker write its persistence file now (SIGUSR1) and wait until it did."""
        before = database.stat().st_mtime_ns if database.exists() else 0
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if database.exists() and database.stat().st_mtime_ns != before:
                time.sleep(0.2)  # written through a temp file and renamed; let the rename land
                return
            time.sleep(0.05)
        raise AssertionError(f"mosquitto did not save {database} within {timeout}s")

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"mqtt://{auth}127.0.0.1:{self.port}"

    @property
    def collector_url(self) -> str:
        return self.url("lepton-collector", COLLECTOR_PASSWORD)

    @property
    def gateway_url(self) -> str:
        return self.url("lepton-gateway", GATEWAY_PASSWORD)


RUNNING: list[subprocess.Popen] = []  # collector processes tests started; killed if a test leaves one behind


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
    while RUNNING:
        process = RUNNING.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def shipped_config_for(tmp: Path, port: int, autosave_interval: int | None = None) -> Path:
    """The shipped config for the tests' users and passwords (see ``lepton_pipelines.iot.local_broker``)."""
    return write_local_config(tmp, port, COLLECTOR_PASSWORD, GATEWAY_PASSWORD, autosave_interval)


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
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nsys_interval 1\n" + keep_root_user()
    )
    broker = Broker(port, _start(config, port), config)
    yield broker
    _stop(broker.process)


def mosquitto_pub(
    port: int, device: str, records: list[dict], password: str = GATEWAY_PASSWORD, retain: bool = False
) -> None:
    """A foreign publisher: Mosquitto's own ``mosquitto_pub -q 1 -l``, one line a message, one device."""
    command = publish_command(port, device, password, retain)
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    completed = subprocess.run(command, input=lines.encode(), capture_output=True, timeout=120)
    assert completed.returncode == 0, completed.stderr.decode()


def fleet_records(devices: int, seqs: range, start_epoch: int, prefix: str = "dev") -> dict[str, list[dict]]:
    """Per device: telemetry records with the given seqs, one second apart."""
    return {
        f"{prefix}-{d}": [
            {
                "device_id": f"{prefix}-{d}",
                "ts": start_epoch + seq,
                "seq": seq,
                "temperature": 20.0 + (seq % 7) / 10,
                "battery": 90.0,
            }
            for seq in seqs
        ]
        for d in range(devices)
    }


def hidden_files(lake_dir: Path) -> list[Path]:
    return [p for p in (lake_dir / "landing").rglob(".*") if p.is_file()]


def run_pipeline(lake_dir: Path, partition: str):
    """raw → clean → governed of the shipped device_telemetry source, plus the device_seq_gaps check."""
    import dagster as dg

    from lepton_pipelines.governance import GreatExpectationsResource
    from lepton_pipelines.iot.definitions import SOURCE_FILE, device_seq_gaps
    from lepton_pipelines.lake.io_manager import LakeIOManager
    from lepton_pipelines.lake.resource import LakeResource
    from lepton_pipelines.sources.factory import build_source_assets
    from lepton_pipelines.sources.registry import load_source_file

    source, problems = load_source_file(SOURCE_FILE)
    assert source is not None, problems
    url = str(lake_dir)
    return dg.materialize(
        [*build_source_assets(source), device_seq_gaps],
        partition_key=partition,
        raise_on_error=False,
        resources={
            "lake": LakeResource(url=url),
            "lake_io": LakeIOManager(lake=LakeResource(url=url)),
            "gx": GreatExpectationsResource(),
        },
    )


def zone(lake_dir: Path, name: str, partition: str):
    import pyarrow.parquet as pq

    return pq.read_table(lake_dir / name / "device_telemetry" / f"date={partition}").to_pandas()
