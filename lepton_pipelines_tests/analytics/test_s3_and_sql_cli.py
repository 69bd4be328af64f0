"""The marts and ``lepton-lake sql`` on an S3 lake (moto's threaded server over HTTP, real s3fs and the
S3 protocol): DuckDB reads s3:// through the lake's fsspec filesystem; no DuckDB extension involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines_tests.analytics.test_hand_fixtures import DAY, write_fx, write_transactions

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fixture_rows(lake) -> None:
    write_transactions(
        lake,
        DAY,
        [
            ("T1", "C1", 100.0, "EUR", "web", "DE", "approved", False),
            ("T2", "C2", 40.0, "USD", "web", "US", "declined", True),
            ("T3", "C2", 60.0, "USD", "atm", "US", "approved", False),
        ],
    )
    write_fx(lake, DAY, {"EURUSD": [1.2, 1.0]})


def _daily_kpis_asset():
    from lepton_pipelines.analytics import marts
    from lepton_pipelines.analytics.assets import mart_asset

    return mart_asset(
        "daily_kpis",
        "test",
        [],
        dg.DailyPartitionsDefinition(start_date="2026-01-01"),
        lambda con, lake, day: marts.daily_kpis_sql(lake, day),
    )


def test_daily_kpis_materialize_on_s3(s3_lake):
    from lepton_pipelines.analytics.assets import AnalyticsIOManager
    from lepton_pipelines.lake.resource import LakeResource

    _fixture_rows(s3_lake)
    result = dg.materialize(
        [_daily_kpis_asset()],
        partition_key=DAY,
        resources={"lake": LakeResource(), "analytics_io": AnalyticsIOManager(lake=LakeResource())},
    )
    assert result.success
    published = s3_lake.path("marts", "daily_kpis", f"date={DAY}", "data.parquet")
    assert published.exists(), f"{published} not written to the bucket"
    with published.fs.open(published.path, "rb") as handle:
        kpis = pd.read_parquet(handle).set_index(["channel", "currency"])
    assert kpis.loc[("web", "EUR"), "amount_usd"] == pytest.approx(110.0)
    assert kpis.loc[("web", "USD"), "fraud_rate"] == 1.0
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks["row_count_reconciles"] and checks["totals_match_governed"] and checks["all_amounts_converted"]
    assert not checks["risk_scores_complete"]  # WARN: no scores in this lake


def _lepton_lake(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lepton_pipelines.analytics.sql_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
    )


def test_sql_cli_answers_a_question_over_s3(s3_lake, moto_s3_endpoint):
    _fixture_rows(s3_lake)
    env = {"LEPTON_LAKE_URL": s3_lake.url, "LEPTON_S3_ENDPOINT_URL": moto_s3_endpoint}
    query = (
        "select channel, count(*) as n, round(sum(amount), 2) as amount from governed.transactions "
        "where date = date '2026-03-10' group by channel order by channel"
    )
    table = _lepton_lake("sql", query, env=env)
    assert table.returncode == 0, table.stderr
    assert "│ atm" in table.stdout and "│ web" in table.stdout and "140.0" in table.stdout
    as_json = _lepton_lake("--json", "sql", query, env=env)
    assert json.loads(as_json.stdout) == [
        {"channel": "atm", "n": 1, "amount": 60.0},
        {"channel": "web", "n": 2, "amount": 140.0},
    ]


def test_sql_cli_lists_tables_and_explains_a_bad_query(tmp_lake):
    _fixture_rows(tmp_lake)
    env = {"LEPTON_LAKE_URL": tmp_lake.url}
    listing = _lepton_lake("sql", "--tables", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "governed.transactions: txn_id VARCHAR" in listing.stdout and "governed.fx_rates:" in listing.stdout
    bad = _lepton_lake("sql", "select * from governed.nope", env=env)
    assert bad.returncode == 2
    assert "nope does not exist" in bad.stderr and "governed.transactions" in bad.stderr  # names what exists
    csv = _lepton_lake(
        "sql", "--format", "csv", "select txn_id, amount from governed.transactions order by txn_id", env=env
    )
    assert csv.stdout.splitlines() == ["txn_id,amount", "T1,100.0", "T2,40.0", "T3,60.0"]
