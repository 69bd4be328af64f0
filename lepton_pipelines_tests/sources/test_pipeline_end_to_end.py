"""Materialize every sample source for one partition in-process and compare with what the sample
generator says it injected — the expected counts come from the generator's manifest, not the pipeline."""

from __future__ import annotations

from datetime import UTC

import dagster as dg
import duckdb
import pandas as pd
import pytest

from lepton_pipelines.definitions import build_defs
from lepton_pipelines.lake.quarantine import QUARANTINE_COLUMNS
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
    return pd.read_parquet(path.path) if path.exists() else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))


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

        unparsable = sum(m.unparsable.values())
        assert len(raw) == m.landed_records - m.malformed_lines - unparsable, name
        raw_q = quarantine_rows(lake, name, partition, "raw")
        assert len(raw_q) == m.malformed_lines + unparsable, name
        assert (raw_q["_rule"] == "parse").sum() == unparsable, name
        assert clean_meta["duplicates_removed"] == m.duplicates, name
        assert clean_meta["rows_dropped"] == sum(m.dropped.values()), name
        clean_q = quarantine_rows(lake, name, partition, "clean")
        # superseded duplicates are in quarantine too, with the key that replaced them
        assert len(clean_q) == sum(m.dropped.values()) + m.duplicates, name
        assert (clean_q["_rule"] == "deduplicate").sum() == m.duplicates, name
        assert len(quarantine_rows(lake, name, partition, "governed")) == sum(m.quarantined.values()), name
        assert len(governed) == m.expected_governed, name
        # nothing lost: every landed record is governed or in quarantine with a reason
        assert m.landed_records == len(governed) + len(raw_q) + len(clean_q) + len(
            quarantine_rows(lake, name, partition, "governed")
        )
        # governed is the declared schema plus the per-row lineage of changed and unparsed values, nothing else internal
        assert not [c for c in governed.columns if c.startswith("_") and c not in ("_replaced", "_parse_errors")], name

    # clean's checks (computed beside its write) were filed under the published file, so certify trusted
    # them instead of validating the table a second time
    for name in manifests:
        governed_meta = materialized_metadata(snapshot if name == "customers" else daily, [name, "governed"])
        assert governed_meta["certified_with"].startswith("recorded by the clean step"), name
    clean_checks = [
        e
        for e in daily.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key.path == ["transactions", "clean"]
    ]
    declared = {
        k.name
        for k in defs.resolve_job_def(MAIN_JOB).asset_layer.asset_graph.asset_check_keys
        if k.asset_key == dg.AssetKey(["transactions", "clean"])
    }
    assert {e.asset_check_evaluation_data.check_name for e in clean_checks} == declared and len(declared) == 10
    assert {e.asset_check_evaluation_data.partition for e in clean_checks} == {PARTITION}  # the UI shows which day

    # the malformed CSV line is quarantined with its file and line number; unparsable amounts name the text
    rejects = quarantine_rows(lake, "transactions", PARTITION, "raw")
    malformed = rejects[rejects["_rule"] == "read"]
    assert malformed["_source_file"].str.endswith("part-0002.csv").all() and len(malformed) == 1
    assert malformed["_raw"].str.contains("BROKEN").all() and malformed["_source_line"].notna().all()
    parse = rejects[rejects["_rule"] == "parse"]
    assert parse["_reason"].str.match(r"^amount: '.*' is not a number").all()
    assert set(parse["amount"]) <= {"12,50", "n/a", "1.2.3", "$40"}
    # dedup kept the latest version (reversed) of each duplicated transaction
    governed = lake.read_table("governed", "transactions", PARTITION)
    assert (governed["status"] == "reversed").sum() == manifests["transactions"].duplicates
    assert set(governed["currency"]) <= {"USD", "EUR", "GBP", "CNY", "JPY"}
    # DuckDB reads the clean zone with hive partitioning
    count = duckdb.sql(
        f"select count(*) from read_parquet('{lake.url}/clean/transactions/*/*.parquet', hive_partitioning=true) "
        f"where date = '{PARTITION}'"
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
        quarantine_rows(lake, "transactions", PARTITION, "governed").drop(
            columns=[c for c in first_q.columns if "time" in c or c.endswith("_at")]
        ),
        first_q.drop(columns=[c for c in first_q.columns if "time" in c or c.endswith("_at")]),
    )
    folder = lake.table_dir("governed", "transactions", PARTITION)
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]


def test_landing_sensor_batches_each_file_version_once(sample_lake):
    lake, manifests = sample_lake
    sources = [s for s in load_sources() if s.name in manifests]
    first = plan_landing_runs(sources, lake)
    # one run per source (each has one partition here), covering all of its files
    assert sorted(r.job_name for r in first.requests) == sorted(source_job_name(n) for n in manifests)
    txn = next(r for r in first.requests if r.job_name == source_job_name("transactions"))
    assert txn.partition_key == PARTITION and txn.tags["lepton/landing-files"] == str(
        len(manifests["transactions"].files)
    )
    keys = {r.run_key for r in first.requests}

    # same files → same keys (a re-evaluated tick launches nothing twice); with the cursor → nothing to run
    assert {r.run_key for r in plan_landing_runs(sources, lake).requests} == keys
    assert plan_landing_runs(sources, lake, first.cursor).requests == []
    # a rewritten file → exactly one new run, for its source and partition
    target = lake.path("landing", "transactions", f"date={PARTITION}", "late-0001.csv")
    with target.fs.open(target.path, "ab") as handle:
        handle.write(
            b'"T20261125-99999999","C00001","2026-11-25T23:59:00Z","1.00","USD","fuel","web","US","approved","false"\n'
        )
    changed = plan_landing_runs(sources, lake, first.cursor).requests
    assert [(r.job_name, r.partition_key) for r in changed] == [(source_job_name("transactions"), PARTITION)]
    assert changed[0].run_key not in keys


def test_landing_sensor_tick_requests_runs_for_the_partition(sample_lake):
    import dagster as dg

    from lepton_pipelines.lake.resource import LakeResource

    lake, manifests = sample_lake
    defs = build_defs()
    sensor = next(s for s in defs.sensors if s.name == "landing_zone_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, resources={"lake": LakeResource()}, repository_def=defs.get_repository_def()
        )
        result = sensor.evaluate_tick(context)
        again = sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance,
                resources={"lake": LakeResource()},
                repository_def=defs.get_repository_def(),
                cursor=result.cursor,
            )
        )
    requests = result.run_requests
    assert len(requests) == len(manifests)  # one run per source per tick
    txn = [r for r in requests if r.job_name == source_job_name("transactions")]
    assert len(txn) == 1 and txn[0].partition_key == PARTITION
    assert all(r.partition_key is None for r in requests if r.job_name == source_job_name("customers"))
    assert not again.run_requests  # the cursor remembers the file versions already requested


def test_streaming_landing_runs_once_per_partition_and_new_batch(tmp_lake):
    """The MQTT collector commits many micro-batches: one run per partition per change, not per file."""
    from datetime import datetime

    from lepton_pipelines.iot.simulator import SimulatorConfig, write_to_landing

    telemetry = [s for s in load_sources() if s.name == "device_telemetry"]
    config = SimulatorConfig(devices=3, messages_per_device=50, start=datetime(2026, 11, 25, tzinfo=UTC))
    write_to_landing(tmp_lake, config, batch_messages=20)
    first = plan_landing_runs(telemetry, tmp_lake).requests
    assert [(r.job_name, r.partition_key) for r in first] == [(source_job_name("device_telemetry"), PARTITION)]
    assert plan_landing_runs(telemetry, tmp_lake).requests[0].run_key == first[0].run_key

    write_to_landing(
        tmp_lake, SimulatorConfig(devices=1, messages_per_device=5, start=config.start, seed=9, device_prefix="late")
    )
    again = plan_landing_runs(telemetry, tmp_lake).requests
    assert len(again) == 1 and again[0].run_key != first[0].run_key


def test_a_partition_without_landing_files_fails_at_once_naming_the_folder(tmp_lake):
    """Not retried with backoff (it is not transient): the run fails on the first attempt, saying where
    the files were expected."""
    result = (
        build_defs()
        .resolve_job_def(source_job_name("fx_rates"))
        .execute_in_process(partition_key="2026-11-20", raise_on_error=False)
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.event_specific_data.error.message) + str(failure.event_specific_data.error.cause)
    assert "fx_rates" in message and "date=2026-11-20" in message


def test_clean_and_governed_read_their_upstream_from_the_lake_and_keep_the_asset_graph(tmp_lake):
    """clean/governed load raw/clean themselves (``deps``, not inputs) so they can free it early: the
    graph still links the stages, and a stage launched before its upstream exists fails naming it."""
    defs = build_defs()
    graph = defs.resolve_asset_graph()
    clean, governed = dg.AssetKey(["transactions", "clean"]), dg.AssetKey(["transactions", "governed"])
    assert graph.get(clean).parent_keys == {dg.AssetKey(["transactions", "raw"])}
    assert graph.get(governed).parent_keys == {clean}
    job = dg.define_asset_job("clean_only", selection=[clean]).resolve(asset_graph=graph)
    result = job.execute_in_process(partition_key=PARTITION, raise_on_error=False, resources=defs.resources)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.event_specific_data.error.message) + str(failure.event_specific_data.error.cause)
    assert (
        "transactions/raw has no data for partition 2026-11-25" in message
        and "materialize transactions/raw first" in message
    )
