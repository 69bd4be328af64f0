"""Benchmark: every analytics mart for every day of a 30-day lake (100,000 governed transactions a day),
beside DuckDB running the very same SQL text directly, measured in the same run.

*marts*: what each mart asset does for a day, without the Dagster run around it — list the lake's
partitions, build the day's SQL, run it in DuckDB over the lake, bring the result to pandas and publish
``<lake>/marts/<name>/date=…/data.parquet`` atomically. *duckdb*: a bare DuckDB connection executing
the same SQL text as ``COPY (…) TO '….parquet'``. *checks*: the marts' contracts (reconciliation with the
governed inputs) on what was published — reported apart, since the baseline has no equivalent.
Each phase runs in its own process, so its peak RSS (sampled every 20 ms, above its post-import level)
is its own. Target (issue #15): marts ≤ 1.3× duckdb.

*Dagster* (``--dagster``): the five mart assets materialized in-process, one run a day — SQL, IO manager,
metadata, charts and checks — for what the orchestration around the SQL adds.

    .venv/bin/python bench/marts.py [--days 30] [--rows 100000] [--scale 0.1] [--repeat 3] [--dagster]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

from peak_rss import PeakRss  # bench/ is on sys.path: the script's own folder

MARTS = ("daily_kpis", "daily_source_quality", "customer_360", "market_risk", "device_health")
SOURCES = (
    ("transactions", True),
    ("customers", False),
    ("fx_rates", True),
    ("market_data", True),
    ("device_telemetry", True),
)
LAST_DAY = "2026-11-20"  # in the past: Dagster refuses partitions of days to come


def days_of(count: int) -> list[str]:
    last = date.fromisoformat(LAST_DAY)
    return [(last - timedelta(days=i)).isoformat() for i in range(count - 1, -1, -1)]


def generate(lake_url: str, days: list[str], rows: int) -> dict:
    """Governed-shaped tables written straight to the lake (the pipeline's own cost is bench/pipeline.py's)."""
    import numpy as np
    import pandas as pd

    from lepton_pipelines.lake.store import Lake, write_parquet_atomic

    lake = Lake(lake_url)
    rng = np.random.default_rng(15)
    customers = max(50, rows // 20)
    currencies = np.array(["USD", "EUR", "GBP", "CNY", "JPY"])
    lake.write_table(
        "governed",
        "customers",
        None,
        pd.DataFrame(
            {
                "customer_id": [f"C{i:06d}" for i in range(customers)],
                "name": [f"Customer {i}" for i in range(customers)],
                "email": [f"c{i}@example.com" for i in range(customers)],
                "segment": rng.choice(["retail", "sme", "corporate"], customers),
                "country": rng.choice(["US", "DE", "GB", "CN"], customers),
                "risk_rating": rng.choice(["low", "medium", "high"], customers, p=[0.6, 0.3, 0.1]),
                "updated_at": pd.Timestamp("2026-01-01", tz="UTC"),
            }
        ),
    )
    for day in days:
        start = pd.Timestamp(day, tz="UTC")
        amount = np.round(rng.lognormal(3.5, 1.1, rows), 2)
        txns = pd.DataFrame(
            {
                "txn_id": [f"T{day.replace('-', '')}-{i:08d}" for i in range(rows)],
                "customer_id": [f"C{c:06d}" for c in rng.integers(0, int(customers * 1.02), rows)],
                "event_ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
                "amount": amount,
                "currency": rng.choice(currencies, rows),
                "merchant_category": rng.choice(["grocery", "travel", "electronics", "fuel"], rows),
                "channel": rng.choice(["web", "mobile", "branch", "atm"], rows),
                "country": rng.choice(["US", "DE", "GB", "CN", "JP", "FR", "SG"], rows),
                "status": rng.choice(["approved", "declined", "reversed"], rows, p=[0.95, 0.04, 0.01]),
                "is_fraud": rng.random(rows) < 0.01,
            }
        )
        lake.write_table("governed", "transactions", day, txns)
        score = rng.random(rows)
        write_parquet_atomic(
            lake.path("models", "transaction_risk", "scores", f"date={day}"),
            pd.DataFrame(
                {
                    "txn_id": txns["txn_id"],
                    "customer_id": txns["customer_id"],
                    "event_ts": txns["event_ts"],
                    "amount": amount,
                    "currency": txns["currency"],
                    "risk_score": score,
                    "is_high_risk": score >= 0.9,
                    "high_risk_threshold": 0.9,
                    "model_name": "transaction_risk",
                    "model_version": "bench0000000",
                    "scored_at": pd.Timestamp.now(tz="UTC"),
                }
            ),
        )
        pairs = [f"{a}{b}" for a in currencies for b in currencies if a != b]
        lake.write_table(
            "governed",
            "fx_rates",
            day,
            pd.DataFrame(
                {
                    "pair": np.repeat(pairs, 24),
                    "ts": np.tile(start + pd.to_timedelta(np.arange(24), unit="h"), len(pairs)),
                    "rate": rng.uniform(0.005, 160, len(pairs) * 24),
                }
            ),
        )
        symbols, minutes = 20, 390
        lake.write_table(
            "governed",
            "market_data",
            day,
            pd.DataFrame(
                {
                    "symbol": np.repeat([f"SYM{i:02d}" for i in range(symbols)], minutes),
                    "ts": np.tile(start + pd.to_timedelta(np.arange(minutes), unit="min"), symbols),
                    "open": 100.0,
                    "high": 101.0,
                    "low": 99.0,
                    "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.001, symbols * minutes))),
                    "volume": rng.integers(100, 5000, symbols * minutes),
                }
            ),
        )
        devices, per_device = 50, 1440
        seq = np.tile(np.arange(per_device), devices)
        keep = rng.random(devices * per_device) > 0.01
        lake.write_table(
            "governed",
            "device_telemetry",
            day,
            pd.DataFrame(
                {
                    "device_id": np.repeat([f"dev-{i:03d}" for i in range(devices)], per_device)[keep],
                    "ts": (start + pd.to_timedelta(seq * 60, unit="s"))[keep],
                    "seq": (seq + days.index(day) * per_device)[keep],
                    "temperature": rng.normal(21, 1, devices * per_device)[keep],
                    "humidity": 45.0,
                    "vibration": 0.2,
                    "battery": 80.0,
                }
            ),
        )
    return {"days": len(days), "rows_per_day": rows, "customers": customers}


def phase_marts(lake_url: str, days: list[str]) -> dict:
    from lepton_pipelines.analytics import marts
    from lepton_pipelines.analytics.engine import connect
    from lepton_pipelines.lake.store import Lake, write_parquet_atomic

    lake = Lake(lake_url)
    per_mart = dict.fromkeys(MARTS, 0.0)
    with PeakRss() as rss:
        started = time.perf_counter()
        for day in days:
            con = connect(lake)
            for name in MARTS:
                t0 = time.perf_counter()
                query = _build(lake, day, name)
                frame = marts.run(con, query)
                write_parquet_atomic(lake.path("marts", name, f"date={day}"), frame)
                per_mart[name] += time.perf_counter() - t0
            con.close()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "per_mart": per_mart, "peak_rss_mib": (rss.peak - rss.base) / 2**20}


def _build(lake, day: str, name: str):
    from lepton_pipelines.analytics import marts

    return {
        "daily_kpis": lambda: marts.daily_kpis_sql(lake, day),
        "daily_source_quality": lambda: marts.source_quality_sql(lake, day, list(SOURCES)),
        "customer_360": lambda: marts.customer_360_sql(lake, day),
        "market_risk": lambda: marts.market_risk_sql(lake, day),
        "device_health": lambda: marts.device_health_sql(lake, day),
    }[name]()


def phase_duckdb(lake_url: str, days: list[str], sql_file: str) -> dict:
    import duckdb

    texts = json.load(open(sql_file))
    out = tempfile.mkdtemp(prefix="bench-marts-duckdb-")
    per_mart = dict.fromkeys(MARTS, 0.0)
    with PeakRss() as rss:
        started = time.perf_counter()
        for day in days:
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            for name in MARTS:
                t0 = time.perf_counter()
                con.execute(
                    f"COPY ({texts[day][name]}) TO '{out}/{name}-{day}.parquet' (FORMAT parquet, COMPRESSION zstd)"
                )
                per_mart[name] += time.perf_counter() - t0
            con.close()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "per_mart": per_mart, "peak_rss_mib": (rss.peak - rss.base) / 2**20}


def phase_checks(lake_url: str, days: list[str]) -> dict:
    from lepton_pipelines.analytics import checks
    from lepton_pipelines.analytics.engine import connect, table_files
    from lepton_pipelines.lake.store import Lake

    lake = Lake(lake_url)
    failed = []
    with PeakRss() as rss:
        started = time.perf_counter()
        for day in days:
            con = connect(lake)
            for name in MARTS:
                query = _build(lake, day, name)
                for outcome in checks.check_mart(con, lake, query, table_files(lake, "marts", name).files([day])):
                    if not outcome.passed and not outcome.warn_only:
                        failed.append(f"{name} {day} {outcome.name}: {outcome.description}")
            con.close()
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mib": (rss.peak - rss.base) / 2**20,
        "failed": failed[:5],
        "failed_count": len(failed),
    }


def phase_dagster(lake_url: str, days: list[str]) -> dict:
    """The five mart assets materialized by Dagster, one in-process run per day: SQL, publish through the
    IO manager, metadata and chart, and the checks — everything a scheduled run does but launching."""
    import dagster as dg

    from lepton_pipelines.analytics.assets import IO_MANAGER_KEY, AnalyticsIOManager, mart_key
    from lepton_pipelines.analytics.definitions import build_analytics_defs
    from lepton_pipelines.lake.resource import LakeResource
    from lepton_pipelines.sources.registry import load_sources

    defs = build_analytics_defs(load_sources())
    keys = {mart_key(name) for name in MARTS}
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and set(a.keys) & keys]
    resources = {
        "lake": LakeResource(url=lake_url),
        IO_MANAGER_KEY: AnalyticsIOManager(lake=LakeResource(url=lake_url)),
    }
    instance = dg.DagsterInstance.ephemeral()
    failed = 0
    with PeakRss() as rss:
        started = time.perf_counter()
        for day in days:
            result = dg.materialize(
                assets,
                partition_key=day,
                resources=resources,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            failed += 0 if result.success else 1
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mib": (rss.peak - rss.base) / 2**20, "failed_runs": failed}


def _sub(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])},
    )
    if out.returncode != 0:
        raise SystemExit(f"phase {args[:2]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=100_000, help="governed transactions per day")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply --rows (e.g. 0.1 for a quick run)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each timed phase")
    parser.add_argument(
        "--dagster", action="store_true", help="also materialize the mart assets with Dagster, one run a day"
    )
    parser.add_argument(
        "--phase", choices=("generate", "marts", "duckdb", "checks", "sql", "dagster"), help=argparse.SUPPRESS
    )
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--sql-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    days = days_of(args.days)
    rows = max(100, int(args.rows * args.scale))
    if args.phase == "generate":
        print(json.dumps(generate(args.lake, days, rows)))
        return
    if args.phase == "sql":
        from lepton_pipelines.lake.store import Lake

        lake = Lake(args.lake)
        texts = {day: {name: _build(lake, day, name).sql for name in MARTS} for day in days}
        json.dump(texts, open(args.sql_file, "w"))
        print(json.dumps({"written": args.sql_file}))
        return
    if args.phase == "marts":
        print(json.dumps(phase_marts(args.lake, days)))
        return
    if args.phase == "duckdb":
        print(json.dumps(phase_duckdb(args.lake, days, args.sql_file)))
        return
    if args.phase == "checks":
        print(json.dumps(phase_checks(args.lake, days)))
        return
    if args.phase == "dagster":
        print(json.dumps(phase_dagster(args.lake, days)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-marts-") as tmp:
        lake = os.path.join(tmp, "lake")
        common = ["--days", str(args.days), "--rows", str(rows), "--lake", lake]
        t0 = time.perf_counter()
        info = _sub("--phase", "generate", *common)
        print(
            f"generated {info['days']} days × {info['rows_per_day']:,} transactions, {info['customers']:,} customers "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        sql_file = os.path.join(tmp, "marts.sql.json")
        _sub("--phase", "sql", *common, "--sql-file", sql_file)
        ours, bare = [], []
        for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits both sides alike
            bare.append(_sub("--phase", "duckdb", *common, "--sql-file", sql_file))
            ours.append(_sub("--phase", "marts", *common))
        best_ours = min(ours, key=lambda r: r["seconds"])
        best_bare = min(bare, key=lambda r: r["seconds"])
        checked = _sub("--phase", "checks", *common)
        ratio = best_ours["seconds"] / best_bare["seconds"]
        print(f"\n{'mart':<22}{'marts (s)':>11}{'duckdb (s)':>12}{'ratio':>8}")
        for name in MARTS:
            a, b = best_ours["per_mart"][name], best_bare["per_mart"][name]
            print(f"{name:<22}{a:>11.2f}{b:>12.2f}{a / b:>8.2f}")
        print(
            f"{'all marts, all days':<22}{best_ours['seconds']:>11.2f}{best_bare['seconds']:>12.2f}{ratio:>8.2f}"
            f"   target ≤ 1.30 → {'OK' if ratio <= 1.3 else 'MISSED'}"
        )
        print(
            f"peak RSS above start: marts {best_ours['peak_rss_mib']:.0f} MiB, duckdb "
            f"{best_bare['peak_rss_mib']:.0f} MiB, "
            f"checks {checked['peak_rss_mib']:.0f} MiB"
        )
        print(
            f"checks (reconcile every published mart with the governed inputs): {checked['seconds']:.2f}s, "
            f"{checked['failed_count']} failed{': ' + '; '.join(checked['failed']) if checked['failed'] else ''}"
        )
        if args.dagster:
            run = _sub("--phase", "dagster", *common)
            print(
                f"Dagster (5 mart assets with checks, metadata and charts, one run a day): {run['seconds']:.2f}s = "
                f"{run['seconds'] / best_bare['seconds']:.2f}× duckdb, peak RSS {run['peak_rss_mib']:.0f} MiB, "
                f"{run['failed_runs']} failed run(s)"
            )
        print(
            json.dumps(
                {
                    "ratio": round(ratio, 3),
                    "marts_seconds": round(best_ours["seconds"], 3),
                    "duckdb_seconds": round(best_bare["seconds"], 3),
                    "checks_seconds": round(checked["seconds"], 3),
                    "marts_peak_rss_mib": round(best_ours["peak_rss_mib"], 1),
                    "duckdb_peak_rss_mib": round(best_bare["peak_rss_mib"], 1),
                    "rows_per_day": rows,
                    "days": args.days,
                }
            )
        )


if __name__ == "__main__":
    main()
