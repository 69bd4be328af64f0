"""Benchmark: one landing-sensor tick over 10,000 landed files on local disk (issue #12: ≤ 5 s).

Three ticks of ``plan_landing_runs`` (the sensor's whole evaluation minus Dagster's bookkeeping) over
10,000 files spread over 365 daily partitions: the first sees everything new, the second nothing new
(the cursor), the third one rewritten file. Beside them, in the same run, the floor any tick pays: a
bare ``os.walk`` + ``stat`` of the same files.

    .venv/bin/python bench/landing_sensor.py [--files 10000] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta

from definitions_timing import ROOT, load_average, report_definitions_import

FIRST_DAY = date(2025, 1, 1)  # 365 days that are all in the past


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    report_definitions_import()
    from lepton_pipelines.contract.documents import read_document, shipped_source_file
    from lepton_pipelines.lake.store import Lake
    from lepton_pipelines.sources.automation import plan_landing_runs
    from lepton_pipelines.sources.registry import load_source_document

    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
    # The shipped source, its partitions starting on the first landed day: the sensor names days before a
    # source's start_date instead of requesting runs for them, and this tick is about planning every file.
    file = shipped_source_file("transactions")
    fields, problems = read_document(file)
    source, problems = load_source_document({**(fields or {}), "start_date": days[0]}, file, "transactions")
    assert source is not None, problems
    with tempfile.TemporaryDirectory(prefix="lepton-bench-sensor-") as lake_url:
        for i in range(args.files):
            folder = os.path.join(lake_url, "landing", "transactions", f"date={days[i % len(days)]}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"part-{i:05d}.csv"), "w") as handle:
                handle.write("txn_id,amount\n")
        lake = Lake(lake_url)

        start = time.perf_counter()
        seen = 0
        for root, _, names in os.walk(os.path.join(lake_url, "landing", "transactions")):
            for name in names:
                os.stat(os.path.join(root, name))
                seen += 1
        floor = time.perf_counter() - start

        timings = []
        start = time.perf_counter()
        first = plan_landing_runs([source], lake)
        timings.append(("first tick (all new)", time.perf_counter() - start, first))
        start = time.perf_counter()
        quiet = plan_landing_runs([source], lake, first.cursor)
        timings.append(("tick with nothing new", time.perf_counter() - start, quiet))
        changed = os.path.join(
            lake_url, "landing", "transactions", f"date={days[len(days) // 2]}", f"part-{len(days) // 2:05d}.csv"
        )
        with open(changed, "a") as handle:
            handle.write("T1,1.0\n")
        start = time.perf_counter()
        one = plan_landing_runs([source], lake, first.cursor)
        timings.append(("tick with one rewritten file", time.perf_counter() - start, one))

    files_in_runs = sum(int(r.tags["lepton/landing-files"]) for r in first.requests)
    assert seen == args.files and files_in_runs == args.files, (seen, files_in_runs)
    assert not first.outside, first.outside[:3]
    assert not quiet.requests and len(one.requests) == 1
    print(f"{args.files:,} landing files over {args.days} daily partitions (local disk)")
    print(f"  floor: os.walk + stat of every file: {floor:.2f} s")
    for label, seconds, plan in timings:
        print(
            f"  {label:32} {seconds:6.2f} s  ({seconds / floor:.1f}x the floor) → {len(plan.requests)} run request(s)"
            f"{'' if seconds <= 5 else '  OVER the 5 s target'}"
        )
    print(
        f"  first tick: {len(first.requests)} run(s) for {files_in_runs:,} files (runs of consecutive days, ≤ the "
        "backfill "
        f"policy's partitions per run); cursor {len(str(first.cursor)):,} characters"
    )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
