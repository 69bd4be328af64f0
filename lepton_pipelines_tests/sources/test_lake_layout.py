"""The lake layout every reader reads: for every shipped source, every zone (raw, clean, governed and the
one-schema quarantine) of two partitions is read by DuckDB (``hive_partitioning=true``, no
``union_by_name``) and by ``pyarrow.dataset`` (Hive partitioning) with identical counts — the counts the
pipeline itself wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pyarrow.dataset as ds
import pytest

from lepton_pipelines.definitions import build_defs
from lepton_pipelines.iot.simulator import SimulatorConfig, write_to_landing
from lepton_pipelines.lake.quarantine import QUARANTINE_COLUMNS, quarantined_rows
from lepton_pipelines.samples.generate import generate_all
from lepton_pipelines.sources.automation import MAIN_JOB, source_job_name
from lepton_pipelines.sources.registry import load_sources

pytestmark = pytest.mark.timeout(600)
PARTITIONS = ("2026-11-24", "2026-11-25")


def test_every_zone_of_every_shipped_source_reads_the_same_in_duckdb_and_pyarrow(tmp_lake):
    lake = tmp_lake
    defs = build_defs()
    for partition in PARTITIONS:
        generate_all(lake, partition, "tiny")
        start = datetime.fromisoformat(partition).replace(tzinfo=UTC)
        write_to_landing(
            lake,
            SimulatorConfig(
                devices=4,
                messages_per_device=30,
                interval_seconds=60.0,
                start=start,
                seed=5,
                spike_rate=0.05,
                duplicate_rate=0.05,
                malformed_rate=0.05,
            ),
        )
        for job in (MAIN_JOB, source_job_name("device_telemetry")):
            selection = (
                None
                if job == MAIN_JOB
                else [dg.AssetKey(["device_telemetry", z]) for z in ("raw", "clean", "governed")]
            )
            result = defs.resolve_job_def(job).execute_in_process(
                partition_key=partition, raise_on_error=False, asset_selection=selection
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert defs.resolve_job_def(source_job_name("customers")).execute_in_process(raise_on_error=False).success

    checked = 0
    for source in load_sources():
        partitioned = source.spec.is_partitioned
        for zone in ("raw", "clean", "governed", "quarantine"):
            folder = lake.path(zone, source.name)
            pattern = f"{folder.path}/*/*.parquet" if partitioned else f"{folder.path}/*.parquet"
            expected = sum(
                quarantined_rows(lake, source.name, p if partitioned else None)
                if zone == "quarantine"
                else len(lake.read_table(zone, source.name, p if partitioned else None))
                for p in (PARTITIONS if partitioned else (None,))
            )
            in_duckdb = duckdb.sql(
                f"select count(*) from read_parquet('{pattern}', hive_partitioning={str(partitioned).lower()})"
            ).fetchall()[0][0]
            dataset = ds.dataset(folder.path, format="parquet", partitioning="hive" if partitioned else None)
            assert in_duckdb == dataset.count_rows() == expected > 0, (
                source.name,
                zone,
                in_duckdb,
                dataset.count_rows(),
                expected,
            )
            names = dataset.schema.names
            if partitioned:  # the partition key is the folder's, never also a data column
                assert names.count("date") == 1 and "date" == names[-1], (source.name, zone, names)
            if zone == "quarantine":
                assert names[: len(QUARANTINE_COLUMNS)] == list(QUARANTINE_COLUMNS), (source.name, names)
                stages = {r[0] for r in duckdb.sql(f"select distinct _stage from read_parquet('{pattern}')").fetchall()}
                assert stages <= {"landing", "raw", "clean", "governed"}
            checked += 1
    assert checked == 5 * 4
