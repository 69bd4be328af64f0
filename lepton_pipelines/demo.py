"""``lepton-demo``: the README's first command — sample data in, certified tables and models out, on a laptop.

Generates deterministic sample landing files (and simulated device telemetry) for the last days up to
``--date``, then launches the shipped jobs through the Dagster instance, exactly as the UI's Launch
button does: ``lakehouse_daily`` and ``device_telemetry_job`` for each day, ``customers_job`` (an
unpartitioned snapshot), then the downstream assets (device registry/status, quality scorecard, data
catalog, models). Those are ordinary runs of the code location: the Runs page, the Overview timeline,
every asset's partition status and the asset-check history show them. It prints where everything is.

The sample sources' ``start_date`` (in their YAML) is where their partitions begin; by default the
demo fills every day from there to ``--date``, at most ``MAX_DEFAULT_DAYS`` of them.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from lepton_pipelines.lake.quarantine import quarantined_rows
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.samples.generate import SIZES, generate_all

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
MAX_DEFAULT_DAYS = 7
# Each job runs with the executor it ships with (source jobs in-process, the main job on a forkserver: see
# sources.automation); warnings (rejected lines, quarantined rows) reach the terminal, the full log is in the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEMO_TAGS = {"lepton/launched-by": "lepton-demo"}
DOWNSTREAM = (
    ["iot", "devices"],
    ["iot", "device_status"],
    ["models", "transaction_risk"],
    ["models", "device_anomaly"],
    ["governance", "quality_scorecard"],
    ["governance", "data_catalog"],
)
ASSET_JOB = "__ASSET_JOB"  # the job the UI's "Materialize" button launches
DEVICE_SOURCE = "device_telemetry"  # the sample streaming source, simulated without a broker
# What workspace.yaml in the repository says, for an installed package run outside the repository.
WORKSPACE_YAML = (
    "load_from:\n  - python_module:\n      module_name: lepton_pipelines.definitions\n      location_name: "
    "lepton_pipelines\n"
)


def demo_days(last: date, days: int | None, first_partition: date) -> list[str]:
    """The days to fill, oldest first: ``days`` of them ending at ``last``, by default every day from
    the sample sources' first partition (at most ``MAX_DEFAULT_DAYS``)."""
    if last < first_partition:
        raise SystemExit(
            f"lepton-demo: --date {last} is before the sample sources' first partition {first_partition} "
            "(their start_date in lepton_pipelines/defs/sources/*/defs.yaml)"
        )
    if days is None:
        days = min(MAX_DEFAULT_DAYS, (last - first_partition).days + 1)
    if days < 1:
        raise SystemExit("lepton-demo: --days must be at least 1")
    first = max(first_partition, last - timedelta(days=days - 1))
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lepton-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--date",
        default=(date.today() - timedelta(days=1)).isoformat(),
        help="last partition to fill (YYYY-MM-DD; default yesterday)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help=f"how many days up to --date (default: from the sample sources' start_date, at most {MAX_DEFAULT_DAYS})",
    )
    parser.add_argument("--size", default="tiny", help=f"sample rows per day: {', '.join(SIZES)} or a row count")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (default 2)")
    args = parser.parse_args(argv)

    # Loading the registry validates every source YAML before any file is written.
    from lepton_pipelines.sources.automation import MAIN_JOB, source_job_name
    from lepton_pipelines.sources.registry import load_sources

    sources = load_sources()
    partitioned = [s for s in sources if s.spec.is_partitioned]
    first_partition = min(
        (date.fromisoformat(s.spec.start_date) for s in partitioned), default=date.fromisoformat(args.date)
    )
    days = demo_days(date.fromisoformat(args.date), args.days, first_partition)
    size = int(args.size) if args.size.isdigit() else args.size

    lake = Lake()
    print(
        f"lepton-demo: writing sample landing files for {days[0]} .. {days[-1]} ({len(days)} "
        f"day{'s' if len(days) != 1 else ''}) into {lake.url}/landing"
    )
    manifests = {}
    for day in days:
        manifests = generate_all(lake, day, size)
        _simulate_devices(lake, day, size)

    from lepton_pipelines.definitions import defs
    from lepton_pipelines.platform.launcher import InstanceLauncher, LaunchRequest

    instance = dg.DagsterInstance.get()

    # The main job holds the batch daily sources; the others (streaming, or another partition start) run their own job.
    in_main = set(defs.resolve_job_def(MAIN_JOB).asset_layer.executable_asset_keys)
    per_day = [MAIN_JOB] + [source_job_name(s.name) for s in partitioned if dg.AssetKey([s.name, "raw"]) not in in_main]
    requests = [LaunchRequest(job, day, tags=DEMO_TAGS, run_config=QUIET) for day in days for job in per_day]
    # The streaming telemetry's newest partition is today's, still open: fill it too, so its freshness
    # check (which expects that partition) starts green.
    telemetry_job = source_job_name(DEVICE_SOURCE)
    newest = (
        defs.resolve_job_def(telemetry_job).partitions_def.get_last_partition_key()
        if telemetry_job in per_day
        else None
    )
    if newest == (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat():
        _simulate_devices(lake, newest, size)
        requests.append(LaunchRequest(telemetry_job, newest, tags=DEMO_TAGS, run_config=QUIET))
    requests += [
        LaunchRequest(source_job_name(s.name), tags=DEMO_TAGS, run_config=QUIET)
        for s in sources
        if not s.spec.is_partitioned
    ]
    print(
        f"lepton-demo: launching {len(requests) + 1} runs through the Dagster instance at {instance.root_directory} "
        f"({args.parallel} at a time)"
    )
    with InstanceLauncher(instance, _workspace_file(instance)) as launcher:
        runs = launcher.run_all(
            requests, parallel=args.parallel, on_finish=lambda request, run: _report(instance, request.label, run)
        )
        downstream = LaunchRequest(
            ASSET_JOB, asset_selection=[dg.AssetKey(k) for k in DOWNSTREAM], tags=DEMO_TAGS, run_config=QUIET
        )
        runs += launcher.run_all(
            [downstream], on_finish=lambda request, run: _report(instance, "downstream assets", run)
        )
    ok = all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)

    last = days[-1]
    print(f"\n  {last}          raw    clean  governed  quarantined   (sample generator expected governed)")
    for source in sources:
        partition = last if source.spec.is_partitioned else None
        counts = [_rows(lake, zone, source.name, partition) for zone in ("raw", "clean", "governed")]
        expected = manifests[source.name].expected_governed if source.name in manifests else "-"
        print(
            f"  {source.name:<16}"
            + "".join(f"{c:>8}" for c in counts)
            + f"{quarantined_rows(lake, source.name, partition):>12}   ({expected})"
        )

    home = os.environ.get("DAGSTER_HOME", "")
    print(f"\nThe lake is at: {lake.url}")
    print("  query it (DuckDB comes with the package):")
    print("    " + duckdb_command(lake.url))
    print(f"  quarantine: {lake.url}/quarantine/   quality history: {lake.url}/_quality/   models: {lake.url}/models/")
    print("Open the UI (the demo's runs are on its Runs page and Overview timeline):")
    print(f"  DAGSTER_HOME={home} bash bin/ui   (dagster dev on this instance)   → http://127.0.0.1:3000")
    return 0 if ok else 1


def _workspace_file(instance: dg.DagsterInstance) -> Path:
    """The repository's workspace.yaml (the one `dagster dev -w workspace.yaml` loads), or the same
    content written under $DAGSTER_HOME when the package runs from an install."""
    if WORKSPACE_FILE.exists():
        return WORKSPACE_FILE
    target = Path(instance.root_directory) / "workspace.yaml"
    target.write_text(WORKSPACE_YAML)
    return target


def duckdb_command(lake_url: str) -> str:
    """A shell command that reads the governed transactions with the DuckDB the package installs."""
    query = (
        "select date, count(*) as rows, round(sum(amount), 2) as amount from "
        f"read_parquet('{lake_url}/governed/transactions/*/*.parquet', "
        "hive_partitioning=true) group by date order by date"
    )
    return '.venv/bin/python -c "import duckdb; print(duckdb.sql(\\"' + query + '\\"))"'


def _report(instance: dg.DagsterInstance, label: str, run: dg.DagsterRun) -> bool:
    """One line per run: status, checks evaluated and which did not pass, and any failed step's error."""
    records = instance.get_records_for_run(
        run.run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}
    ).records
    checks = [
        r.event_log_entry.dagster_event.event_specific_data
        for r in records
        if r.event_log_entry.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    not_passed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    success = run.status == dg.DagsterRunStatus.SUCCESS
    print(
        f"lepton-demo: {label:<36}{'SUCCESS' if success else run.status.value:<8} {len(checks)} checks, "
        f"{len(not_passed)} not passed{': ' + ', '.join(not_passed) if not_passed else ''}  (run {run.run_id[:8]})"
    )
    for record in records:
        event = record.event_log_entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            print(f"    step {event.step_key} failed: {event.event_specific_data.error.message.strip()[:300]}")
    return success


def _rows(lake: Lake, zone: str, source: str, partition: str | None) -> int | str:
    try:
        return len(lake.read_table(zone, source, partition))
    except FileNotFoundError:
        return "-"


def _simulate_devices(lake: Lake, partition: str, size) -> None:
    """Device telemetry without a broker: the collector's own parse-and-commit path writes the landing
    files (with spikes, gaps, duplicates and malformed payloads), as if the collector had been running."""
    from lepton_pipelines.iot.simulator import SimulatorConfig, device_ids, write_to_landing

    config = SimulatorConfig(
        devices=12,
        messages_per_device=60 if size == "tiny" else 600,
        interval_seconds=60.0,
        start=datetime.fromisoformat(partition).replace(tzinfo=UTC),
        seed=3,
        spike_rate=0.01,
        gap_rate=0.01,
        duplicate_rate=0.01,
        malformed_rate=0.005,
        offline_devices=2,
    )
    totals = write_to_landing(lake, config)
    # Declare all but the last two devices, so the UI shows how unregistered senders are flagged (not dropped).
    registry = lake.path("landing", "devices", "registry.yaml")
    registry.parent.mkdir(parents=True, exist_ok=True)
    sites = ("plant-sh-01", "plant-sz-02", "warehouse-hk-01")
    entries = [
        f"  - {{device_id: {device}, type: env-sensor, site: {sites[i % len(sites)]}, owner: team:iot-ops, firmware: "
        f"{config.firmware}}}"
        for i, device in enumerate(device_ids(config)[:-2])
    ]
    registry.write_text("devices:\n" + "\n".join(entries) + "\n")
    print(
        f"lepton-demo: simulated {totals['messages']} device messages → {totals['files']} landing files, "
        f"{totals['quarantined']} quarantined"
    )


if __name__ == "__main__":
    sys.exit(main())
