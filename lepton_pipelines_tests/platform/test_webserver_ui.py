"""The real web UI: ``dagster-webserver`` serving the code location on a loopback port, a run of a
sample source launched through the GraphQL API with Dagster's own Python client and polled to
success, and headless Chromium rendering the asset graph with the sample asset groups.

The screenshot is kept under test-artifacts/ (gitignored) for people to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from lepton_pipelines_tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SAMPLE_DATE = "2026-11-25"  # on or after the sample sources' start_date
SAMPLE_SOURCE = "transactions"
SOURCE_GROUPS = ("transactions", "customers", "market_data", "fx_rates", "device_telemetry")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.timeout(600)


LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
}
"""


def _location_loaded(client: DagsterGraphQLClient, deadline_seconds: float) -> None:
    """Fail with the code location's own load error instead of a later 'job not found'."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        entries = client._execute(LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            outcome = entry["locationOrLoadError"] or {}
            if outcome.get("__typename") == "PythonError":
                raise AssertionError(f"code location {entry['name']} failed to load: {outcome['message']}")
        if entries and all((e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation" for e in entries):
            return
        time.sleep(1)
    raise AssertionError("code location did not load in time")


def _wait_for(url: str, process: subprocess.Popen, log: Path, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster-webserver exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"dagster-webserver did not answer {url}:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """dagster-webserver on a free loopback port, a temporary SQLite DAGSTER_HOME, and a sample lake.

    The DefaultRunCoordinator launches submitted runs straight away, so no daemon is needed.
    """
    base = tmp_path_factory.mktemp("webserver")
    home, lake = base / "dagster_home", base / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "storage:\n  sqlite:\n    base_dir:\n      env: DAGSTER_HOME\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
        "nux:\n  enabled: false\n"  # the first-visit dialog would cover the screenshot
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LEPTON_LAKE_URL": str(lake),
        "PYTHONPATH": str(REPO_ROOT),
    }
    for key in ("LEPTON_BACKUP_URL", "LEPTON_ALERT_WEBHOOK_URL", "LEPTON_S3_ENDPOINT_URL"):
        env.pop(key, None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lepton_pipelines.samples",
            "--lake",
            str(lake),
            "--date",
            SAMPLE_DATE,
            "--size",
            "tiny",
        ],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = free_port()
    log = base / "webserver.log"
    with open(log, "wb") as log_handle:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", process, log, deadline_seconds=240)
        yield {"port": port, "lake": lake, "base": base, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_graphql_client_launches_a_sample_source_run_to_success(webserver):
    client = DagsterGraphQLClient("127.0.0.1", port_number=webserver["port"])
    _location_loaded(client, deadline_seconds=120)
    run_id = client.submit_job_execution(
        f"{SAMPLE_SOURCE}_job", tags={"dagster/partition": SAMPLE_DATE, "lepton/test": "graphql"}
    )
    deadline = time.monotonic() + 420
    status = None
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            break
        time.sleep(2)
    assert status == DagsterRunStatus.SUCCESS, f"run {run_id} ended {status}; see {webserver['log']}"
    governed = webserver["lake"] / "governed" / SAMPLE_SOURCE / f"date={SAMPLE_DATE}"
    assert list(governed.glob("*.parquet")), f"no governed partition written under {governed}"


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1600,1000",
            "--virtual-time-budget=30000",
            *extra,
            url,
        ],
        capture_output=True,
        timeout=180,
    )


def test_chromium_renders_the_asset_graph_with_the_sample_groups(webserver):
    url = f"http://127.0.0.1:{webserver['port']}/asset-groups"
    profile = webserver["base"] / "chromium-profile"
    dom = _chromium(url, profile, "--dump-dom")
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    html = dom.stdout.decode("utf-8", "replace")
    missing = [group for group in SOURCE_GROUPS if group not in html]
    assert not missing, f"asset graph page does not show groups {missing}"

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "asset-graph.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(url, profile, f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr.decode()[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank canvas
