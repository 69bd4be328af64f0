"""Backfills through the two ways users launch them, as real processes on a real instance:

* ``dagster asset materialize --partition-range`` (single run; needs the single-run policy, selected
  with ``LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN=all``);
* the UI's backfill: GraphQL ``launchPartitionBackfill`` against a running webserver, executed by the
  daemon's backfill machinery under the multi-run policy — N partitions in ceil(N / per-run) runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lepton_pipelines.lake.store import Lake
from lepton_pipelines_tests.conftest import free_port

from .test_backfill_range import LANDED, ORDERS_YAML, _land  # noqa: F401

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAYS = sorted(LANDED)


@pytest.fixture
def instance_env(tmp_path):
    """A DAGSTER_HOME with the repo's dagster.yaml, a lake with three landed days, and the test source
    added through LEPTON_SOURCES_PATH (no Python)."""
    home, sources = tmp_path / "home", tmp_path / "sources"
    home.mkdir()
    sources.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    (sources / "orders.yaml").write_text(ORDERS_YAML)
    lake = Lake(str(tmp_path / "lake"))
    _land(lake)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(home),
        "LEPTON_LAKE_URL": lake.url,
        "LEPTON_SOURCES_PATH": str(sources),
        "PYTHONWARNINGS": "ignore",
    }
    return env, lake


def _governed_days(lake: Lake) -> list[str]:
    return sorted(d for d in DAYS if lake.table_dir("governed", "orders", d).joinpath("data.parquet").exists())


def test_cli_partition_range_runs_one_run(instance_env):
    env, lake = instance_env
    env = {**env, "LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN": "all"}
    out = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "lepton_pipelines.definitions",
            "--select",
            "group:orders",
            "--partition-range",
            f"{DAYS[0]}...{DAYS[-1]}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert _governed_days(lake) == DAYS
    assert out.stderr.count("RUN_SUCCESS") == 1


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


WORKSPACE = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _wait_for_location(port: int, web: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 240
    while True:
        entries = _graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            return
        assert time.monotonic() < deadline and web.poll() is None, log.read_text()[-3000:]
        time.sleep(1)


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 100) { runId status tags { key value } } }
  }
}"""


def test_ui_backfill_runs_through_the_daemon_in_few_runs(instance_env, tmp_path):
    env, lake = instance_env
    env = {**env, "LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN": "2"}  # 3 days → 2 runs
    port = free_port()
    # One process creates the SQLite storage first: the webserver and the daemon racing to create it collide.
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120
    )
    web = _start(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env,
        tmp_path / "web.log",
    )
    daemon = _start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path / "daemon.log")
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline and web.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
                time.sleep(1)
        _wait_for_location(port, web, tmp_path / "web.log")
        keys = [{"path": ["orders", zone]} for zone in ("raw", "clean", "governed")]
        launched = _graphql(port, LAUNCH_BACKFILL, {"params": {"partitionNames": DAYS, "assetSelection": keys}})
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["launchPartitionBackfill"]["backfillId"]
        deadline = time.monotonic() + 420
        while True:
            status = _graphql(port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            if status["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            assert time.monotonic() < deadline, (status, (tmp_path / "daemon.log").read_text()[-3000:])
            time.sleep(2)
        assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (
            status,
            (tmp_path / "daemon.log").read_text()[-3000:],
        )
        runs = status["runs"]
        assert len(runs) == 2 and all(r["status"] == "SUCCESS" for r in runs)
        ranges = sorted(
            (
                {t["key"]: t["value"] for t in r["tags"]}.get("dagster/asset_partition_range_start"),
                {t["key"]: t["value"] for t in r["tags"]}.get("dagster/asset_partition_range_end"),
            )
            for r in runs
        )
        assert ranges == [(DAYS[0], DAYS[1]), (DAYS[2], DAYS[2])]
        assert _governed_days(lake) == DAYS
    finally:
        _stop(daemon)
        _stop(web)
