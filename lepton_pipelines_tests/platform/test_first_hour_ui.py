"""A new user's first hour, checked in a real browser: ``lepton-demo`` (small samples) on a fresh
instance, then ``dagster dev`` (web UI + daemon, so sensors and schedules tick as they would for the
user), then headless Debian Chromium driven by Playwright asserts through the rendered pages that

* the lineage page shows every asset group of the code location;
* a governed asset shows the demo's newest partition as its latest materialization, with its checks passing;
* the Runs page has the demo's runs, green, and no failed run — also after the sensors have ticked
  with no image registry and no alert webhook configured;
* the quality scorecard draws one pass-rate chart per source on its asset page.

Screenshots are kept in test-artifacts/first-hour-*.png (gitignored) for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from lepton_pipelines_tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# What a laptop has not configured: the automation needing it must stay quiet, not fail.
UNSET = (
    "LEPTON_IMAGE_REGISTRY",
    "LEPTON_ALERT_WEBHOOK_URL",
    "LEPTON_BACKUP_URL",
    "LEPTON_LAKE_URL",
    "LEPTON_S3_ENDPOINT_URL",
    "LEPTON_SOURCES_PATH",
)
GOVERNED_ASSET = "market_data/governed"

pytestmark = pytest.mark.timeout(1800)


def _wait_for_http(url: str, process: subprocess.Popen, log: Path, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"dagster dev did not answer {url}:\n{log.read_text()[-4000:]}")


def _ticks(instance: dg.DagsterInstance, name: str) -> list:
    for state in instance.all_instigator_state():
        if state.instigator_name == name:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20))
    return []


def _wait_until(condition, what: str, deadline_seconds: float):
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory):
    base = tmp_path_factory.mktemp("first_hour")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")  # what bin/demo does
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(DAGSTER_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    ARTIFACTS.mkdir(exist_ok=True)

    demo = subprocess.run(
        [sys.executable, "-m", "lepton_pipelines.demo", "--size", "small", "--days", "2"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    (ARTIFACTS / "first-hour-demo.log").write_text(demo.stdout + demo.stderr)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "at at column" not in demo.stdout + demo.stderr  # rejected-line reasons read as written
    days = re.search(r"sample landing files for (\S+) \.\. (\S+) \((\d+) days?\)", demo.stdout)
    assert days, demo.stdout[:2000]

    port = free_port()
    log = base / "dagster-dev.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            # what bin/ui does: dagster dev started inside DAGSTER_HOME with the repo's workspace
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=home,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/server_info", process, log, deadline_seconds=300)
        assert "will not be used to configure Dagster" not in log.read_text(
            errors="replace"
        )  # no ignored-dagster.yaml warning
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", str(home))  # the instance's dagster.yaml reads it
            yield {
                "url": f"http://127.0.0.1:{port}",
                "home": home,
                "log": log,
                "demo": demo.stdout,
                "newest": days.group(2),
                "days": int(days.group(3)),
                "instance": dg.DagsterInstance.from_config(str(home)),
            }
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # dagster dev, its webserver, daemon and code servers
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.copy(log, ARTIFACTS / "first-hour-dagster-dev.log")


@pytest.fixture(scope="module")
def settled(first_hour):
    """Wait like a user who opens the UI a few minutes later: the daemon has ticked the sensors and the
    runs they started have finished (freshness checks run on their hourly schedule). Returns every run."""
    instance = first_hour["instance"]
    _wait_until(lambda: _ticks(instance, "model_version_sensor"), "model_version_sensor to tick", 300)
    _wait_until(
        lambda: [t for t in _ticks(instance, "lepton_run_failure_alert") if "webhook" in (t.skip_reason or "")],
        "the alert sensor's second tick",
        300,
    )

    def finished():
        runs = instance.get_runs()
        return runs if all(r.is_finished for r in runs) else None

    return _wait_until(finished, "every run to finish", 900)


@pytest.fixture(scope="module")
def browser(first_hour, settled, tmp_path_factory):
    from playwright.sync_api import sync_playwright  # the [test] extra; drives Debian's chromium, downloads no browser

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh profile: no first-visit state carried over
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(120_000)
        yield page
        context.close()


def _open(page, first_hour, path: str, ready_text: str):
    page.goto(first_hour["url"] + path, wait_until="domcontentloaded")
    page.get_by_text(ready_text, exact=False).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    return page


def _shot(page, name: str) -> Path:
    target = ARTIFACTS / f"first-hour-{name}.png"
    target.unlink(missing_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000
    return target


def test_sensors_needing_infrastructure_tick_quietly_and_no_run_fails(first_hour, settled):
    """The daemon has evaluated the delivery and alert sensors with nothing configured: skipped ticks
    naming the setting, no build runs, and no failed run."""
    instance = first_hour["instance"]
    model_ticks = _ticks(instance, "model_version_sensor")
    assert model_ticks and all(
        t.status.value == "SKIPPED" and "LEPTON_IMAGE_REGISTRY is unset" in t.skip_reason for t in model_ticks
    )
    alert = [t.skip_reason for t in _ticks(instance, "lepton_run_failure_alert") if "webhook" in (t.skip_reason or "")]
    assert alert[0].startswith("no webhook configured (set LEPTON_ALERT_WEBHOOK_URL)")
    assert not _ticks(instance, "image_built_sensor")  # stopped while no registry is set

    runs = instance.get_runs()
    assert [r.job_name for r in runs if r.job_name == "build_model_image"] == []
    assert [(r.job_name, r.run_id) for r in runs if r.status != dg.DagsterRunStatus.SUCCESS] == []
    demo_runs = [r for r in runs if r.tags.get("lepton/launched-by") == "lepton-demo"]
    assert {r.job_name for r in demo_runs} >= {"lakehouse_daily", "device_telemetry_job", "customers_job"}
    assert all(r.remote_job_origin is not None for r in demo_runs)  # launched through the instance, not in-process


def test_lineage_shows_every_group(first_hour, browser):
    from lepton_pipelines.definitions import defs

    groups = {node.group_name for node in defs.resolve_asset_graph().asset_nodes if node.group_name}
    page = _open(browser, first_hour, "/asset-groups", "Global asset lineage")
    for group in sorted(groups):
        page.get_by_text(group, exact=True).first.wait_for(state="attached")
    text = page.inner_text("body")
    missing = sorted(g for g in groups if not re.search(rf"(^|\n){re.escape(g)}\n", text))
    assert not missing, f"lineage page does not show groups {missing}"
    _shot(page, "lineage")


def test_governed_asset_shows_the_newest_partition_with_passing_checks(first_hour, browser):
    page = _open(browser, first_hour, f"/assets/{GOVERNED_ASSET}", "Latest materialization")
    status = page.locator("text=Latest materialization").first.locator("xpath=..")
    status.get_by_text(first_hour["newest"], exact=True).wait_for(state="visible")
    _shot(page, "governed-asset")

    page = _open(browser, first_hour, f"/assets/{GOVERNED_ASSET}?view=partitions", "Materialized (")
    text = page.inner_text("body")
    assert "Failed (0)" in text and f"Materialized ({first_hour['days']})" in text, text[:1500]
    _shot(page, "governed-partitions")

    page = _open(browser, first_hour, f"/assets/{GOVERNED_ASSET}?view=checks", "Execute all")
    page.get_by_text("Succeeded", exact=True).first.wait_for(state="visible")
    text = page.inner_text("body")
    count = int(re.search(r"Checks \((\d+)\)", text).group(1))
    check_list = text.split("Execute all", 1)[1].split("\nExecute\n", 1)[0]  # the list left of the selected check
    lines = [line.strip() for line in check_list.splitlines() if line.strip()]
    # each check is its name then its status; freshness_check runs on its hourly schedule, so right after
    # the demo it may not have been evaluated yet — every check the runs evaluated must have succeeded
    statuses = {
        name: status
        for name, status in zip(lines, lines[1:], strict=False)
        if name.replace("_", "").isalnum() and name.islower()
    }
    evaluated = {name: status for name, status in statuses.items() if name != "freshness_check"}
    assert count >= 3 and len(statuses) == count, check_list
    assert {"reconciliation", "row_retention"} <= set(evaluated) and set(evaluated.values()) == {"Succeeded"}, (
        check_list
    )
    _shot(page, "governed-checks")


def test_runs_page_has_the_demo_runs_and_no_failed_run(first_hour, browser):
    page = _open(browser, first_hour, "/runs", "lakehouse_daily")
    text = page.inner_text("body")
    assert text.count("Success") >= 5 and "Failure" not in text
    _shot(page, "runs")
    page = _open(browser, first_hour, "/runs?q%5B0%5D=status%3AFAILURE", "Status is")
    page.get_by_text("No matching runs").wait_for(state="visible")
    page = _open(browser, first_hour, "/overview/activity/timeline", "Timeline")
    page.get_by_text("lakehouse_daily").first.wait_for(state="visible")
    _shot(page, "timeline")


def test_scorecard_draws_one_chart_per_source_on_its_asset_page(first_hour, browser):
    from lepton_pipelines.sources.registry import load_sources

    page = _open(browser, first_hour, "/assets/governance/quality_scorecard", "Latest materialization")
    charts = page.locator("img[alt$=' pass rate']")
    charts.first.wait_for(state="visible")
    sources = sorted(s.name for s in load_sources())
    drawn = sorted(charts.nth(i).get_attribute("alt").removesuffix(" pass rate") for i in range(charts.count()))
    assert drawn == sources
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        assert chart.is_visible() and chart.evaluate("img => img.complete && img.naturalWidth > 0")
    page.get_by_text("Plots", exact=True).first.wait_for(state="visible")  # the numbers per source, over time
    _shot(page, "scorecard")
