"""Benchmark: a year of small daily partitions backfilled through Dagster's backfill machinery, beside
the same number of rows as ONE partition through the same assets, on the same running deployment — and
the floor under it: the same backfill of assets that do no data work.

A webserver and a daemon on a temporary instance (the repo's dagster.yaml); a ``transactions``-shaped
source (the shipped YAML, renamed and starting early enough for a year of partitions, added through
``LEPTON_SOURCES_PATH``). The backfill is launched over GraphQL as the UI launches it
(``launchPartitionBackfill`` over raw, clean, governed); the daemon splits it by the assets'
multi-run BackfillPolicy (``LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN``, default 92) and each run processes
its range in one go. The single partition is launched over GraphQL too. Target (issue #12):
backfill ≤ 2× the single partition.

The floor (phase ``floor``): a second code location (``bench/backfill_floor.py``, loaded beside the
repo's from a temporary workspace file) defines ``txn_floor/raw → clean → governed`` with the real
source's partitions, BackfillPolicy, job and exactly its check specs, whose steps only record what the
real steps record for Dagster — per partition one materialization per asset (tiny metadata) and one
passed evaluation per check — and write nothing to the lake. Its backfill (same partitions, same
daemon, same instance, same GraphQL launch) and its single partition (same day, same job shape) take
what Dagster's per-partition event storage and per-run overhead alone take. If the floor backfill is
over 2× the real single partition, the target is out of reach with per-partition checks on this
storage, whatever the data work costs. The events each backfill stored are counted from the instance
after its runs, per partition, so that claim is measured.

    .venv/bin/python bench/backfill.py [--days 365] [--rows-per-day 10000] [--per-run 92] [--postgres]
        [--phases all | a comma-separated choice of single, backfill, floor, real (= single,backfill)]
    .venv/bin/python bench/backfill.py --days 20 --rows-per-day 2000        # a quick run of every phase
    .venv/bin/python bench/backfill.py --phases single,floor                # the key ratio without the real backfill
    .venv/bin/python bench/backfill.py --phases floor                       # the floor alone (lands nothing)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from dagster_services import DagsterServices
from definitions_timing import ROOT, load_average, report_definitions_import

sys.path.insert(0, str(ROOT))
from lepton_pipelines.sources.factory import DEFAULT_BACKFILL_MAX_PARTITIONS  # noqa: E402

SOURCE = "txn_bench"
FLOOR_SOURCE = "txn_floor"
FLOOR_LOCATION = "lepton_floor"
FLOOR_MODULE = Path(__file__).resolve().parent / "backfill_floor.py"
FIRST_DAY = date(2025, 1, 1)
SINGLE_DAY = "2026-06-30"  # outside the backfilled range, same partitions definition
ZONES = ("raw", "clean", "governed")
PHASES = ("single", "backfill", "floor")
PHASE_GROUPS = {"real": ("single", "backfill"), "all": PHASES}
# Event types a step stores once per partition of its range (materializations, their planned events, the
# check evaluations): what the per-partition cost of a backfill is made of.
PER_PARTITION_EVENTS = ("ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION")


def assets(source: str) -> list[list[str]]:
    return [[source, zone] for zone in ZONES]


def bench_source_yaml(name: str = SOURCE) -> str:
    """The shipped transactions source under another name, with partitions from FIRST_DAY."""
    import yaml

    from lepton_pipelines.contract.documents import read_document, shipped_source_file

    fields, problems = read_document(shipped_source_file("transactions"))
    assert fields is not None, problems
    return yaml.safe_dump({**fields, "name": name, "start_date": FIRST_DAY.isoformat()}, sort_keys=False)


def land(lake_url: str, days: list[str], rows_per_day: int, single_rows: int) -> tuple[int, int]:
    """Generated transactions landed for each of ``days`` and ``single_rows`` for SINGLE_DAY (none: 0), then
    moved under the bench source's landing folder. Returns the rows the generator expects governed of each."""
    from lepton_pipelines.lake.store import Lake
    from lepton_pipelines.samples.generate import generate_transactions

    lake = Lake(lake_url)
    governed = 0
    for day in days:
        governed += generate_transactions(
            lake, day, rows_per_day, seed=int(day.replace("-", "")) % 10_000
        ).expected_governed
    governed_single = generate_transactions(lake, SINGLE_DAY, single_rows).expected_governed if single_rows else 0
    shutil.move(os.path.join(lake_url, "landing", "transactions"), os.path.join(lake_url, "landing", SOURCE))
    return governed, governed_single


def governed_rows(lake_url: str, days: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.read_metadata(os.path.join(lake_url, "governed", SOURCE, f"date={d}", "data.parquet")).num_rows for d in days
    )


@dataclass
class Single:
    seconds: float  # launched until its run ended
    run_seconds: float  # the run process, started to ended
    events: Counter = field(default_factory=Counter)


@dataclass
class Backfill:
    seconds: float  # launched until the last run ended
    pickup: float  # launched until the daemon created its first run
    completed: float  # launched until the daemon marked it completed
    run_seconds: list[float]
    events: Counter = field(default_factory=Counter)

    @property
    def runs(self) -> int:
        return len(self.run_seconds)


def event_kind(event) -> str:
    """The event's type; ``<type> (range)``/``(unpartitioned)`` for the per-partition types when the event
    names no single partition (a planned event for a whole range, the freshness check's evaluation)."""
    kind = event.event_type_value
    if kind not in PER_PARTITION_EVENTS:
        return kind
    if kind == "ASSET_CHECK_EVALUATION":
        partition = event.event_specific_data.partition
    else:
        partition = event.partition
    if partition is not None:
        return kind
    return f"{kind} ({'range' if event.partitions_subset is not None else 'unpartitioned'})"


def stored_events(services: DagsterServices, run_ids: list[str]) -> Counter:
    """How many events of each kind the runs stored in the instance's event log (read back after they ended)."""
    counts: Counter = Counter()
    with services.instance() as instance:
        for run_id in run_ids:
            counts.update(event_kind(e.dagster_event) for e in instance.all_logs(run_id) if e.dagster_event)
    return counts


def run_single(services: DagsterServices, job: str, location: str) -> Single:
    launched = time.time()
    run_id = services.launch_job(job, SINGLE_DAY, location)
    run = services.wait_for_run(run_id)
    if run["status"] != "SUCCESS":
        raise SystemExit(f"{job} single-partition run ended {run['status']}; logs under {services.home}")
    return Single(run["endTime"] - launched, run["endTime"] - run["startTime"], stored_events(services, [run_id]))


def run_backfill(services: DagsterServices, source: str, days: list[str]) -> Backfill:
    launched = time.time()
    backfill_id = services.launch_backfill(assets(source), days)
    status = services.wait_for_backfill(backfill_id)
    completed = time.time() - launched
    runs = status["runs"]
    if status["status"] not in ("COMPLETED", "COMPLETED_SUCCESS") or any(r["status"] != "SUCCESS" for r in runs):
        raise SystemExit(
            f"{source} backfill ended {status['status']} ({[r['status'] for r in runs]}); logs under {services.home}"
        )
    # From the launch until the last run ended: every partition is done and its checks recorded.
    return Backfill(
        seconds=max(r["endTime"] for r in runs) - launched,
        pickup=min(r["creationTime"] for r in runs) - launched,
        completed=completed,
        run_seconds=sorted(r["endTime"] - r["startTime"] for r in runs),
        events=stored_events(services, [r["runId"] for r in runs]),
    )


def events_line(events: Counter, partitions: int, runs: int) -> str:
    """Per partition for the event types stored per partition, per run for the rest."""
    per_partition = ", ".join(f"{events[t] / partitions:.2f} {t}" for t in PER_PARTITION_EVENTS)
    rest = ", ".join(f"{n / runs:.1f} {t}" for t, n in events.most_common() if t not in PER_PARTITION_EVENTS)
    return f"{sum(events.values()):,} events stored; per partition {per_partition}; per run {rest}"


def report_backfill(what: str, backfill: Backfill, days: int, per_run: str) -> None:
    print(
        f"{what} backfill of {days} partitions launched until its last run ended: {backfill.seconds:.1f} s in "
        f"{backfill.runs} run(s) of up to {per_run} partitions"
    )
    print(
        f"  the daemon picked it up after {backfill.pickup:.1f} s (it looks every 30 s); run processes "
        f"{backfill.run_seconds[0]:.1f}–{backfill.run_seconds[-1]:.1f} s (sum {sum(backfill.run_seconds):.1f} s); "
        f"marked completed after {backfill.completed:.1f} s"
    )
    print(f"  {events_line(backfill.events, days, backfill.runs)}")


def report_single(what: str, single: Single, governed: str = "") -> None:
    print(
        f"{what} launched until its run ended: {single.seconds:.1f} s (run process {single.run_seconds:.1f} s)"
        f"{governed}"
    )
    print(f"  {events_line(single.events, 1, 1)}")


def ratio_line(what: str, backfill: Backfill, single: Single) -> str:
    ratio = backfill.seconds / single.seconds
    return (
        f"{what}: {ratio:.2f}x (target ≤ 2x) {'OK' if ratio <= 2 else 'OVER'}; without the daemon's pickup wait "
        f"{(backfill.seconds - backfill.pickup) / single.seconds:.2f}x; until marked completed "
        f"{backfill.completed / single.seconds:.2f}x"
    )


def floor_verdict(floor: Backfill, single: Single) -> str:
    """What the floor says of the target: the backfill cannot take less than its floor."""
    if floor.seconds <= 2 * single.seconds:
        return "  the floor is within 2x the real single partition: the target is not ruled out by Dagster's own cost"
    if floor.seconds - floor.pickup > 2 * single.seconds:
        return (
            "  the floor alone is over 2x the real single partition, even without the daemon's pickup wait: the "
            "target is out of reach with per-partition checks on this instance storage"
        )
    return "  the floor is over 2x the real single partition only by the daemon's pickup wait (up to 30 s)"


def parse_phases(text: str) -> set[str]:
    phases: set[str] = set()
    for name in (p.strip() for p in text.split(",") if p.strip()):
        if name not in PHASES and name not in PHASE_GROUPS:
            raise ValueError(name)
        phases.update(PHASE_GROUPS.get(name, (name,)))
    if not phases:
        raise ValueError(text)
    return phases


def floor_location() -> dict:
    """The workspace entry of the floor's code location, beside the repo's own."""
    return {
        "python_file": {
            "relative_path": str(FLOOR_MODULE),
            "location_name": FLOOR_LOCATION,
            "working_directory": str(ROOT),
        }
    }


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
    parser.add_argument(
        "--phases",
        default="all",
        help="comma-separated: single (the real source, days × rows-per-day rows as one partition), backfill "
        "(the real source's backfill), floor (the floor's single partition and backfill); real = single,backfill; "
        "all (default) = every phase",
    )
    args = parser.parse_args()
    try:
        phases = parse_phases(args.phases)
    except ValueError as bad:
        parser.error(f"--phases: {bad} is not a comma-separated choice of {', '.join([*PHASES, *PHASE_GROUPS])}")
    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
    rows = args.days * args.rows_per_day
    print(f"phases: {', '.join(p for p in PHASES if p in phases)}")
    report_definitions_import()
    with tempfile.TemporaryDirectory(prefix="lepton-bench-backfill-") as work:
        lake_url, sources, floor_dir = os.path.join(work, "lake"), Path(work, "sources"), Path(work, "floor")
        os.mkdir(lake_url)
        sources.mkdir()
        floor_dir.mkdir()  # not under LEPTON_SOURCES_PATH: only the floor location defines the floor source
        (sources / f"{SOURCE}.yaml").write_text(bench_source_yaml())
        (floor_dir / f"{FLOOR_SOURCE}.yaml").write_text(bench_source_yaml(FLOOR_SOURCE))
        if phases & {"single", "backfill"}:
            start = time.perf_counter()
            expected, expected_single = land(
                lake_url, days if "backfill" in phases else [], args.rows_per_day, rows if "single" in phases else 0
            )
            print(f"landed the real source's data in {time.perf_counter() - start:.0f} s")
        env = {
            "LEPTON_LAKE_URL": lake_url,
            "LEPTON_SOURCES_PATH": str(sources),
            "LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN": args.per_run,
            "LEPTON_FLOOR_SOURCE": str(floor_dir / f"{FLOOR_SOURCE}.yaml"),
        }
        extra = [floor_location()] if "floor" in phases else None
        print(f"instance storage: {'Postgres' if args.postgres else 'SQLite (the repo dagster.yaml)'}")
        with DagsterServices(env, postgres=args.postgres, extra_locations=extra) as services:
            if "single" in phases:
                single = run_single(services, f"{SOURCE}_job", "lepton_pipelines")
            if "backfill" in phases:
                backfill = run_backfill(services, SOURCE, days)
            if "floor" in phases:
                floor_single = run_single(services, f"{FLOOR_SOURCE}_job", FLOOR_LOCATION)
                floor_backfill = run_backfill(services, FLOOR_SOURCE, days)
        if "single" in phases and (got := governed_rows(lake_url, [SINGLE_DAY])) != expected_single:
            raise SystemExit(f"single partition governed {got} rows, the generator expects {expected_single}")
        if "backfill" in phases and (got := governed_rows(lake_url, days)) != expected:
            raise SystemExit(f"the backfill governed {got} rows, the generator expects {expected}")
        written = [p for p in Path(lake_url).rglob("*") if FLOOR_SOURCE in p.parts]
        if written:
            raise SystemExit(f"the floor wrote to the lake: {written[:5]}")
    if "single" in phases:
        report_single(f"single partition (real, {rows:,} rows)", single, f"; governed {expected_single:,} rows")
    if "backfill" in phases:
        report_backfill(f"real ({args.rows_per_day:,} rows a partition)", backfill, args.days, args.per_run)
        print(f"  governed {expected:,} rows")
    if "floor" in phases:
        report_single("floor single partition (no data work)", floor_single)
        report_backfill("floor (no data work, nothing written)", floor_backfill, args.days, args.per_run)
    if {"single", "backfill"} <= phases:
        print(ratio_line("real backfill / real single partition", backfill, single))
    if {"single", "floor"} <= phases:
        print(ratio_line("floor backfill / real single partition", floor_backfill, single))
        print(floor_verdict(floor_backfill, single))
    if "floor" in phases:
        print(
            f"floor backfill / floor single partition: {floor_backfill.seconds / floor_single.seconds:.2f}x; "
            f"floor backfill per partition {floor_backfill.seconds / args.days * 1000:.0f} ms "
            f"(without the pickup wait {(floor_backfill.seconds - floor_backfill.pickup) / args.days * 1000:.0f} ms)"
        )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
