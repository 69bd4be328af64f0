"""Benchmark: a year of small daily partitions backfilled through Dagster's backfill machinery, beside
the same number of rows as ONE partition through the same assets, on the same running deployment.

A webserver and a daemon on a temporary instance (the repo's dagster.yaml); a ``transactions``-shaped
source (the shipped YAML, renamed and starting early enough for a year of partitions, added through
``LEPTON_SOURCES_PATH``). The backfill is launched over GraphQL as the UI launches it
(``launchPartitionBackfill`` over raw, clean, governed); the daemon splits it by the assets'
multi-run BackfillPolicy (``LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN``, default 92) and each run processes
its range in one go. The single partition is launched over GraphQL too. Target (issue #12):
backfill ≤ 2× the single partition.

    .venv/bin/python bench/backfill.py [--days 365] [--rows-per-day 10000] [--per-run 92] [--postgres]
    .venv/bin/python bench/backfill.py --days 20 --rows-per-day 2000        # a quick run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from dagster_services import DagsterServices
from definitions_timing import ROOT, load_average, report_definitions_import

sys.path.insert(0, str(ROOT))
from lepton_pipelines.sources.factory import DEFAULT_BACKFILL_MAX_PARTITIONS  # noqa: E402

SOURCE = "txn_bench"
FIRST_DAY = date(2025, 1, 1)
SINGLE_DAY = "2026-06-30"  # outside the backfilled range, same partitions definition
ASSETS = [[SOURCE, zone] for zone in ("raw", "clean", "governed")]


def bench_source_yaml() -> str:
    """The shipped transactions source under another name, with partitions from FIRST_DAY."""
    import yaml

    from lepton_pipelines.contract.documents import read_document, shipped_source_file

    fields, problems = read_document(shipped_source_file("transactions"))
    assert fields is not None, problems
    return yaml.safe_dump({**fields, "name": SOURCE, "start_date": FIRST_DAY.isoformat()}, sort_keys=False)


def land(lake_url: str, days: list[str], rows_per_day: int) -> tuple[int, int]:
    """Generated transactions landed for each day, then moved under the bench source's landing folder."""
    from lepton_pipelines.lake.store import Lake
    from lepton_pipelines.samples.generate import generate_transactions

    lake = Lake(lake_url)
    governed = 0
    for day in days:
        governed += generate_transactions(
            lake, day, rows_per_day, seed=int(day.replace("-", "")) % 10_000
        ).expected_governed
    governed_single = generate_transactions(lake, SINGLE_DAY, rows_per_day * len(days)).expected_governed
    shutil.move(os.path.join(lake_url, "landing", "transactions"), os.path.join(lake_url, "landing", SOURCE))
    return governed, governed_single


def governed_rows(lake_url: str, days: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.read_metadata(os.path.join(lake_url, "governed", SOURCE, f"date={d}", "data.parquet")).num_rows for d in days
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows-per-day", type=int, default=10_000)
    parser.add_argument(
        "--per-run",
        default=str(DEFAULT_BACKFILL_MAX_PARTITIONS),
        help="LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN for the backfill (default: the shipped default)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="instance storage in a fresh Postgres database (as in production) "
        "instead of SQLite files; server from $LEPTON_BENCH_POSTGRES, default the local one",
    )
    args = parser.parse_args()
    report_definitions_import()
    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
    with tempfile.TemporaryDirectory(prefix="lepton-bench-backfill-") as work:
        lake_url, sources = os.path.join(work, "lake"), Path(work, "sources")
        sources.mkdir()
        (sources / f"{SOURCE}.yaml").write_text(bench_source_yaml())
        start = time.perf_counter()
        expected, expected_single = land(lake_url, days, args.rows_per_day)
        print(
            f"landed {args.days} days × {args.rows_per_day:,} rows and one day of {args.days * args.rows_per_day:,} "
            "rows "
            f"in {time.perf_counter() - start:.0f} s"
        )
        env = {
            "LEPTON_LAKE_URL": lake_url,
            "LEPTON_SOURCES_PATH": str(sources),
            "LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN": args.per_run,
        }
        print(f"instance storage: {'Postgres' if args.postgres else 'SQLite (the repo dagster.yaml)'}")
        with DagsterServices(env, postgres=args.postgres) as services:
            launched = time.time()
            run_id = services.launch_job(f"{SOURCE}_job", SINGLE_DAY)
            single = services.wait_for_run(run_id)
            single_seconds = single["endTime"] - launched
            if single["status"] != "SUCCESS":
                raise SystemExit(f"single-partition run ended {single['status']}; logs under {services.home}")

            launched = time.time()
            backfill_id = services.launch_backfill(ASSETS, days)
            status = services.wait_for_backfill(backfill_id)
            completed_seconds = time.time() - launched
            runs = status["runs"]
            if status["status"] not in ("COMPLETED", "COMPLETED_SUCCESS") or any(
                r["status"] != "SUCCESS" for r in runs
            ):
                raise SystemExit(
                    f"backfill ended {status['status']} ({[r['status'] for r in runs]}); logs under {services.home}"
                )
        got, got_single = governed_rows(lake_url, days), governed_rows(lake_url, [SINGLE_DAY])
    if (got, got_single) != (expected, expected_single):
        raise SystemExit(
            f"governed rows differ from the generator's: backfill {got} vs {expected}, single {got_single} vs "
            f"{expected_single}"
        )
    # From the launch until the last run ended: every partition is in the lake and its checks recorded.
    backfill_seconds = max(r["endTime"] for r in runs) - launched
    pickup = min(r["creationTime"] for r in runs) - launched
    run_seconds = sorted(r["endTime"] - r["startTime"] for r in runs)
    print(
        f"single partition ({args.days * args.rows_per_day:,} rows) launched until its run ended: "
        f"{single_seconds:.1f} s "
        f"(run process {single['endTime'] - single['startTime']:.1f} s); governed {got_single:,} rows"
    )
    print(
        f"backfill of {args.days} partitions × {args.rows_per_day:,} rows launched until its last run ended: "
        f"{backfill_seconds:.1f} s "
        f"in {len(runs)} run(s) of up to {args.per_run} partitions; governed {got:,} rows"
    )
    print(
        f"  the daemon picked the backfill up after {pickup:.1f} s (it looks every 30 s); run processes "
        f"{run_seconds[0]:.1f}–{run_seconds[-1]:.1f} s (sum {sum(run_seconds):.1f} s); marked completed after "
        f"{completed_seconds:.1f} s"
    )
    ratio = backfill_seconds / single_seconds
    print(
        f"backfill / single partition: {ratio:.2f}x (target ≤ 2x) {'OK' if ratio <= 2 else 'OVER'}; "
        f"without the daemon's pickup wait {(backfill_seconds - pickup) / single_seconds:.2f}x; "
        f"until marked completed {completed_seconds / single_seconds:.2f}x"
    )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
