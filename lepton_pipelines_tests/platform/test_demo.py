"""The demo's pieces that need no instance: which days it fills, and the DuckDB query it prints (run
for real with the DuckDB the package installs)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pandas as pd
import pytest

from lepton_pipelines.demo import MAX_DEFAULT_DAYS, demo_days, duckdb_command
from lepton_pipelines.lake.store import Lake, write_parquet_atomic
from lepton_pipelines.sources.registry import load_sources


def test_days_default_to_the_sample_start_and_at_most_a_week():
    start = date(2026, 11, 20)
    assert demo_days(date(2026, 11, 22), None, start) == ["2026-11-20", "2026-11-21", "2026-11-22"]
    a_month_later = demo_days(date(2026, 12, 20), None, start)
    assert len(a_month_later) == MAX_DEFAULT_DAYS and a_month_later[-1] == "2026-12-20"
    assert demo_days(date(2026, 11, 26), 2, start) == ["2026-11-25", "2026-11-26"]
    assert demo_days(date(2026, 11, 21), 5, start) == ["2026-11-20", "2026-11-21"]  # never before the first partition
    with pytest.raises(SystemExit, match="before the sample sources' first partition 2026-11-20"):
        demo_days(date(2026, 11, 1), None, start)


def test_sample_sources_start_where_the_demo_data_starts():
    starts = {s.spec.start_date for s in load_sources() if s.spec.is_partitioned}
    assert starts == {"2026-11-20"}  # one start: lakehouse_daily holds every batch daily source


def test_the_printed_duckdb_query_runs_with_the_installed_package(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    for day, amounts in (("2026-11-25", [1.5, 2.25]), ("2026-11-26", [10.0])):
        write_parquet_atomic(lake.path("governed", "transactions", f"date={day}"), pd.DataFrame({"amount": amounts}))
    command = duckdb_command(lake.url)
    assert command.startswith(".venv/bin/python -c ")
    result = subprocess.run(
        ["bash", "-c", command.replace(".venv/bin/python", sys.executable, 1)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2026-11-25" in result.stdout and "3.75" in result.stdout and "2026-11-26" in result.stdout


def test_the_fallback_workspace_is_the_repository_workspace():
    import yaml

    from lepton_pipelines.demo import WORKSPACE_FILE, WORKSPACE_YAML

    assert yaml.safe_load(WORKSPACE_YAML) == yaml.safe_load(WORKSPACE_FILE.read_text())
