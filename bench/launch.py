"""Benchmark: a tiny partition launched the way the UI launches it, beside an in-process run of it.

Launched: a webserver and a daemon on a temporary instance with the repo's ``dagster.yaml`` (queued run
coordinator, the default run launcher: one ``dagster api execute_run`` process per run); the
``transactions_job`` (raw → clean → governed with their checks) is launched for one partition over
GraphQL, as the UI's launchpad, a schedule or the landing sensor submits it (``launchRun``), and timed
until the run reports ``SUCCESS``. In-process: the same job and partition through ``execute_job`` in a
process that has already imported the code location. Targets (issue #12): launched ≤ 5 s and ≤ 2× in-process.

    .venv/bin/python bench/launch.py [--rows 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from dagster_services import DagsterServices
from definitions_timing import ROOT, load_average, report_definitions_import

PARTITION = "2026-11-25"
JOB = "transactions_job"


def source_job():
    """The code location's ``transactions_job``, as the launched run loads it. Module-level so
    ``dagster.reconstructable`` can point at it."""
    from lepton_pipelines.definitions import defs

    return defs.resolve_job_def(JOB)


def phase_in_process(lake_url: str, repeat: int) -> list[float]:
    """execute_job of the same asset selection and partition, in this process (imports paid before)."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ["LEPTON_LAKE_URL"] = lake_url
    import dagster as dg

    recon = dg.reconstructable(source_job)
    recon.get_definition()
    times = []
    with dg.instance_for_test() as instance:
        for _ in range(repeat):
            start = time.perf_counter()
            result = dg.execute_job(recon, instance=instance, tags={"dagster/partition": PARTITION})
            times.append(time.perf_counter() - start)
            if not result.success:
                raise SystemExit("in-process run failed")
    return times


def in_process_seconds(lake_url: str, repeat: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--in-process", lake_url, "--repeat", str(repeat)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"in-process run failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def launch_runs(
    lake_url: str, dequeue_interval: int | None, repeat: int, postgres: bool
) -> tuple[list[float], list[float]]:
    launched, run_only = [], []
    with DagsterServices({"LEPTON_LAKE_URL": lake_url}, dequeue_interval, postgres) as services:
        for _ in range(repeat):
            start = time.perf_counter()
            run_id = services.launch_job(JOB, PARTITION)
            run = services.wait_for_run(run_id)
            launched.append(time.perf_counter() - start)
            if run["status"] != "SUCCESS":
                raise SystemExit(f"launched run {run_id} ended {run['status']}; logs under {services.home}")
            run_only.append(run["endTime"] - run["startTime"])
    return launched, run_only


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", metavar="LAKE", help=argparse.SUPPRESS)
    parser.add_argument(
        "--dequeue-interval",
        type=int,
        default=None,
        help="also launch with the queued run coordinator dequeuing every N s (the repo's run_queue: 1 s; "
        "Dagster's default: 5 s)",
    )
    parser.add_argument("--postgres", action="store_true", help="instance storage in a fresh Postgres database")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.in_process:
        print(json.dumps(phase_in_process(args.in_process, args.repeat)))
        return
    from lepton_pipelines.lake.store import Lake
    from lepton_pipelines.samples.generate import generate_transactions

    report_definitions_import()
    with tempfile.TemporaryDirectory(prefix="lepton-bench-launch-") as lake_url:
        generate_transactions(Lake(lake_url), PARTITION, args.rows)
        variants = [("repo dagster.yaml", None)] + (
            [(f"dequeue every {args.dequeue_interval} s", args.dequeue_interval)]
            if args.dequeue_interval is not None
            else []
        )
        measured = {name: launch_runs(lake_url, interval, args.repeat, args.postgres) for name, interval in variants}
        local = in_process_seconds(lake_url, args.repeat)

    # The first in-process run is cold (GX imported, its context built, caches filled), as every launched
    # run is in its fresh run-worker process; the later ones are warm. Both are shown.
    cold, warm = local[0], statistics.median(local[1:]) if len(local) > 1 else local[0]
    print(
        f"tiny transactions partition ({args.rows} rows), median of {args.repeat}; instance storage "
        f"{'Postgres' if args.postgres else 'SQLite (the repo dagster.yaml)'}"
    )
    print(
        f"  in-process execute_job: cold (first in its process) {cold:.2f} s, warm {warm:.2f} s "
        f"(each: {', '.join(f'{t:.2f}' for t in local)}); code location imported before the clock"
    )
    for name, (launched, run_only) in measured.items():
        med_launched, med_run = statistics.median(launched), statistics.median(run_only)
        print(
            f"  launched over GraphQL until SUCCESS ({name}): {med_launched:.2f} s (each: "
            f"{', '.join(f'{t:.2f}' for t in launched)}); "
            f"run process start→end {med_run:.2f} s, the rest is queue wait + run-worker start and code load"
        )
        print(
            f"    launched ≤ 5 s: {'OK' if med_launched <= 5 else 'OVER'}; launched / in-process cold "
            f"{med_launched / cold:.2f}x, "
            f"warm {med_launched / warm:.2f}x (target ≤ 2x)"
        )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
