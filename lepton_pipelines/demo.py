"""``lepton-demo``: the README's first command — sample data in, certified tables out, on a laptop.

Generates deterministic sample landing files, runs the main ``lakehouse_daily`` job for one partition
(and the unpartitioned sources' jobs) on the local Dagster instance, then prints where everything is.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta

import dagster as dg
from dagster import DagsterInstance

from lepton_pipelines.lake.store import Lake
from lepton_pipelines.samples.generate import SIZES, generate_all


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

    instance = DagsterInstance.get()
    ok = True
    for job_name, partition in _jobs_to_run(defs, MAIN_JOB, source_job_name, args.date):
        print(f"lepton-demo: running {job_name}" + (f" for partition {partition}" if partition else ""))
        result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, partition_key=partition, raise_on_error=False)
        ok &= result.success
        print(f"lepton-demo: {job_name}: {'SUCCESS' if result.success else 'FAILED'} (run {result.run_id})")

    print()
    for name, m in manifests.items():
        print(f"  {name:<14} landed {m.landed_records:>8} records → expected governed {m.expected_governed}")
    print(f"\nThe lake is at: {lake.url}")
    print(f"  query it: duckdb -c \"select count(*) from read_parquet('{lake.url}/governed/transactions/*/*.parquet', hive_partitioning=true)\"")
    print(f"  quarantine: {lake.url}/quarantine/   quality history: {lake.url}/_quality/")
    print(f"Open the UI: DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '')} .venv/bin/dagster dev -w workspace.yaml  → http://127.0.0.1:3000")
    return 0 if ok else 1


def _jobs_to_run(defs, main_job: str, source_job_name, partition: str) -> list[tuple[str, str | None]]:
    """The main job, then every source it cannot hold (unpartitioned or streaming), each with its own job."""
    from lepton_pipelines.sources.registry import load_sources

    main_assets = set(defs.resolve_job_def(main_job).asset_layer.executable_asset_keys)
    runs: list[tuple[str, str | None]] = [(main_job, partition)]
    for source in load_sources():
        if dg.AssetKey([source.name, "raw"]) not in main_assets:
            runs.append((source_job_name(source.name), partition if source.spec.is_partitioned else None))
    return runs

def _simulate_devices(lake: Lake, partition: str, size) -> None:
    """Device telemetry without a broker: the collector's own parse-and-commit path writes the landing
    files (with spikes, gaps, duplicates and malformed payloads), as if the collector had been running."""
    from datetime import datetime, timezone

    from lepton_pipelines.iot.simulator import SimulatorConfig, write_to_landing

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
    print(f"lepton-demo: simulated {totals['messages']} device messages → {totals['files']} landing files, {totals['quarantined']} quarantined")

if __name__ == "__main__":
    sys.exit(main())
