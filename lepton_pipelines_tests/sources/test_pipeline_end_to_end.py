"""Materialize every sample source for one partition in-process and compare with what the sample
generator says it injected — the expected counts come from the generator's manifest, not the pipeline."""
from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from lepton_pipelines.definitions import build_defs
from lepton_pipelines.samples.generate import generate_all
from lepton_pipelines.sources.automation import MAIN_JOB, plan_landing_runs, source_job_name
from lepton_pipelines.sources.registry import load_sources

PARTITION = "2026-11-25"


@pytest.fixture
def sample_lake(tmp_lake):
    manifests = generate_all(tmp_lake, PARTITION, "tiny")
    return tmp_lake, manifests


def run(defs, job: str, partition: str | None):
    result = defs.resolve_job_def(job).execute_in_process(partition_key=partition, raise_on_error=False)
    failures = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failures
    return result


def materialized_metadata(result, key_path: list[str]) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.path == key_path:
            return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"{key_path} was not materialized")


def quarantine_rows(lake, source: str, partition: str | None, stage: str) -> pd.DataFrame:
    path = lake.table_dir("quarantine", source, partition) / f"{stage}.parquet"
    return pd.read_parquet(path.path) if path.exists() else pd.DataFrame()


def test_every_sample_source_reconciles_with_the_generator_manifest(sample_lake):
    lake, manifests = sample_lake
    defs = build_defs()
    daily = run(defs, MAIN_JOB, PARTITION)
    snapshot = run(defs, source_job_name("customers"), None)

    for name, m in manifests.items():
        result = snapshot if name == "customers" else daily
        partition = None if name == "customers" else PARTITION
        raw = lake.read_table("raw", name, partition)
        governed = lake.read_table("governed", name, partition)
        clean_meta = materialized_metadata(result, [name, "clean"])["reconciliation"]

        assert len(raw) == m.landed_records - m.malformed_lines, name
        assert len(quarantine_rows(lake, name, partition, "raw")) == m.malformed_lines, name
        assert clean_meta["duplicates_removed"] == m.duplicates, name
        assert clean_meta["rows_dropped"] == sum(m.dropped.values()), name
        assert len(quarantine_rows(lake, name, partition, "clean")) == sum(m.dropped.values()), name
        assert len(quarantine_rows(lake, name, partition, "governed")) == sum(m.quarantined.values()), name
        assert len(governed) == m.expected_governed, name
        # nothing lost: every raw row is governed, a superseded duplicate, dropped or quarantined
        assert len(raw) == len(governed) + m.duplicates + sum(m.dropped.values()) + sum(m.quarantined.values())
        # governed is the declared schema, nothing internal
        assert not [c for c in governed.columns if c.startswith("_")], name

    # the malformed CSV line is quarantined with its file and line number
    rejects = quarantine_rows(lake, "transactions", PARTITION, "raw")
    assert rejects["source_file"].str.endswith("part-0002.csv").all()
    assert rejects["raw"].str.contains("BROKEN").all()
    # dedup kept the latest version (reversed) of each duplicated transaction
    governed = lake.read_table("governed", "transactions", PARTITION)
    assert (governed["status"] == "reversed").sum() == manifests["transactions"].duplicates
    assert set(governed["currency"]) <= {"USD", "EUR", "GBP", "CNY", "JPY"}
    # DuckDB reads the clean zone with hive partitioning
    count = duckdb.sql(
        f"select count(*) from read_parquet('{lake.url}/clean/transactions/*/*.parquet', hive_partitioning=true) where date = '{PARTITION}'"
    ).fetchall()[0][0]
    assert count == len(lake.read_table("clean", "transactions", PARTITION))


def test_rerunning_a_partition_gives_the_same_result(sample_lake):
    lake, _ = sample_lake
    defs = build_defs()
    run(defs, source_job_name("transactions"), PARTITION)
    first = {z: lake.read_table(z, "transactions", PARTITION) for z in ("raw", "clean", "governed")}
    first_q = quarantine_rows(lake, "transactions", PARTITION, "governed")
    run(defs, source_job_name("transactions"), PARTITION)
    for zone, df in first.items():
        pd.testing.assert_frame_equal(lake.read_table(zone, "transactions", PARTITION), df)
    pd.testing.assert_frame_equal(
        quarantine_rows(lake, "transactions", PARTITION, "governed").drop(columns=[c for c in first_q.columns if "time" in c or c.endswith("_at")]),
        first_q.drop(columns=[c for c in first_q.columns if "time" in c or c.endswith("_at")]),
    )
    folder = lake.table_dir("governed", "transactions", PARTITION)
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]


def test_landing_sensor_requests_one_run_per_file_version(sample_lake):
    lake, manifests = sample_lake
    sources = [s for s in load_sources() if s.name in manifests]
    first = plan_landing_runs(sources, lake)
    keys = {r.run_key for r in first}
    expected_files = sum(len(m.files) for m in manifests.values())
    assert len(keys) == len(first) == expected_files
    by_job = {r.job_name for r in first}
    assert by_job == {source_job_name(n) for n in manifests}
    assert {r.partition_key for r in first if r.job_name == source_job_name("transactions")} == {PARTITION}

    # unchanged files → identical keys (Dagster skips them); a rewritten file → exactly one new key
    assert {r.run_key for r in plan_landing_runs(sources, lake)} == keys
    target = lake.path("landing", "transactions", f"date={PARTITION}", "late-0001.csv")
    with target.fs.open(target.path, "ab") as handle:
        handle.write(b'"T20261125-99999999","C00001","2026-11-25T23:59:00Z","1.00","USD","fuel","web","US","approved","false"\n')
    changed = {r.run_key for r in plan_landing_runs(sources, lake)} - keys
    assert len(changed) == 1 and "late-0001.csv" in next(iter(changed))
