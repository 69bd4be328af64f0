"""``lepton-demo``: the README's first command — sample data in, certified tables and models out, on a laptop.

Generates deterministic sample landing files (and simulated device telemetry), runs the main
``lakehouse_daily`` job for one partition plus the jobs of sources it cannot hold (unpartitioned or
streaming), then the downstream assets (device registry/status, quality scorecard, data catalog,
models) on the local Dagster instance, and prints where everything is.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from lepton_pipelines.lake.quarantine import quarantined_rows
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.samples.generate import SIZES, generate_all

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DOWNSTREAM = (
    ["iot", "devices"],
    ["iot", "device_status"],
    ["models", "transaction_risk"],
    ["models", "device_anomaly"],
    ["governance", "quality_scorecard"],
    ["governance", "data_catalog"],
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lepton-demo", description=__doc__)
    parser.add_argument("--date", default=(date.today() - timedelta(days=1)).isoformat(), help="partition to run (YYYY-MM-DD)")
    parser.add_argument("--size", default="tiny", help=f"sample size: {', '.join(SIZES)} or a row count")
    args = parser.parse_args(argv)

    lake = Lake()
    size = int(args.size) if args.size.isdigit() else args.size
    print(f"lepton-demo: writing sample landing files for {args.date} into {lake.url}/landing")
    manifests = generate_all(lake, args.date, size)
    _simulate_devices(lake, args.date, size)

    # Imported after the sample data exists: loading definitions validates every source YAML.
    from lepton_pipelines.definitions import defs
    from lepton_pipelines.sources.automation import MAIN_JOB, source_job_name
    from lepton_pipelines.sources.registry import load_sources

    instance = dg.DagsterInstance.get()
    sources = load_sources()
    ok = True
    for job_name, partition in _jobs_to_run(defs, sources, MAIN_JOB, source_job_name, args.date):
        ok &= _run(defs.resolve_job_def(job_name), instance, job_name, partition_key=partition)
    downstream = [dg.AssetKey(k) for k in DOWNSTREAM]
    ok &= _run(defs.resolve_implicit_global_asset_job_def(), instance, "downstream assets", asset_selection=downstream)

    print("\n  source            raw    clean  governed  quarantined   (sample generator expected governed)")
    for source in sources:
        partition = args.date if source.spec.is_partitioned else None
        counts = [_rows(lake, zone, source.name, partition) for zone in ("raw", "clean", "governed")]
        expected = manifests[source.name].expected_governed if source.name in manifests else "-"
        print(f"  {source.name:<16}" + "".join(f"{c:>8}" for c in counts) + f"{quarantined_rows(lake, source.name, partition):>12}   ({expected})")

    print(f"\nThe lake is at: {lake.url}")
    print(f"  query it: duckdb -c \"select count(*) from read_parquet('{lake.url}/governed/transactions/*/*.parquet', hive_partitioning=true)\"")
    print(f"  quarantine: {lake.url}/quarantine/   quality history: {lake.url}/_quality/   models: {lake.url}/models/")
    print(f"Open the UI: DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '')} .venv/bin/dagster dev -w workspace.yaml  → http://127.0.0.1:3000")
    return 0 if ok else 1


def _run(job, instance, label: str, **kwargs) -> bool:
    result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False, **kwargs)
    failed = [e for e in result.all_events if e.is_step_failure]
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed_checks = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    print(
        f"lepton-demo: {label:<22}{'SUCCESS' if result.success else 'FAILED '}  {len(checks)} checks, "
        f"{len(failed_checks)} not passed{': ' + ', '.join(failed_checks) if failed_checks else ''}  (run {result.run_id[:8]})"
    )
    for event in failed:
        print(f"    step {event.step_key} failed: {event.event_specific_data.error.message.strip()[:300]}")
    return result.success


def _jobs_to_run(defs, sources, main_job: str, source_job_name, partition: str) -> list[tuple[str, str | None]]:
    """The main job, then every source it cannot hold (unpartitioned or streaming), each with its own job."""
    main_assets = set(defs.resolve_job_def(main_job).asset_layer.executable_asset_keys)
    runs: list[tuple[str, str | None]] = [(main_job, partition)]
    for source in sources:
        if dg.AssetKey([source.name, "raw"]) not in main_assets:
            runs.append((source_job_name(source.name), partition if source.spec.is_partitioned else None))
    return runs


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
        start=datetime.fromisoformat(partition).replace(tzinfo=timezone.utc),
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
        f"  - {{device_id: {device}, type: env-sensor, site: {sites[i % len(sites)]}, owner: team:iot-ops, firmware: {config.firmware}}}"
        for i, device in enumerate(device_ids(config)[:-2])
    ]
    registry.write_text("devices:\n" + "\n".join(entries) + "\n")
    print(f"lepton-demo: simulated {totals['messages']} device messages → {totals['files']} landing files, {totals['quarantined']} quarantined")


if __name__ == "__main__":
    sys.exit(main())
