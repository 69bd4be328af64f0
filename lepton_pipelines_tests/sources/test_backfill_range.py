"""A backfill run over a partition range leaves exactly what one run per partition leaves.

Same landing files into two lakes: lake A is materialized as ONE run over a 3-day range (what a
multi-run BackfillPolicy launches), lake B as three single-partition runs. Every lake file (raw, clean,
governed, quarantine, quality records), every materialization's row count and every check result —
per partition — must match.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.sources.factory import BACKFILL_MAX_PARTITIONS_ENV, backfill_policy_for, build_source_assets
from lepton_pipelines.sources.registry import load_source_file

pytestmark = pytest.mark.timeout(300)

DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}

ORDERS_YAML = """
name: orders
description: Test orders.
owner: team:test
connector: {type: file, format: csv}
schema:
  - {name: order_id, type: integer, nullable: false, description: Order number}
  - {name: status, type: string, description: Order status}
  - {name: amount, type: float, description: Amount in EUR, on_parse_error: "null"}
primary_key: [order_id]
partitioning: daily
cleaning:
  - {rule: trim}
  - {rule: drop_if_null, columns: [order_id]}
  - {rule: deduplicate, keys: [order_id]}
expectations:
  - {expectation: expect_column_values_to_be_in_set, kwargs: {column: status, value_set: [new, paid, shipped]}}
  - {expectation: expect_column_values_to_be_between, kwargs: {column: amount, min_value: 0, max_value: 1000}}
  - {expectation: expect_column_mean_to_be_between, kwargs: {column: amount, max_value: 500}, severity: warn}
governance: {row_failures: quarantine, schema_drift: warn, min_retained_fraction: 0.3}
"""

# Each day has something for every stage: a line with a missing field (raw quarantine), a key that does
# not parse (raw quarantine: order_id is required), an amount that does not parse (kept as null:
# on_parse_error null), a duplicate key (dropped by dedup), a status
# outside the set (governed quarantine); day 3 fails the WARN mean check.
LANDED = {
    "2026-03-01": "order_id,status,amount\n1,new,10\n2,paid,20\n2,paid,21\n3,bogus,30\nnot-a-number,new,5\n4,new\n",
    "2026-03-02": "order_id,status,amount\n10,shipped,100\n11,new,abc\n12,unknown,50\n13,new,60\n"
    "13,new,61\nx,new,1\n14\n",
    "2026-03-03": "order_id,status,amount\n20,new,900\n21,paid,950\n21,paid,950\n22,weird,800\n?,paid,1\n23,,1,1\n",
}


def _source(folder: Path):
    path = folder / "orders.yaml"
    path.write_text(textwrap.dedent(ORDERS_YAML))
    source, problems = load_source_file(path)
    assert not problems, problems
    return source


def _land(lake: Lake) -> None:
    for day, text in LANDED.items():
        folder = lake.path("landing", "orders", f"date={day}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "orders.csv").write_text(text)


def _materialize(assets, lake: Lake, instance, **kwargs):
    return dg.materialize(
        assets,
        instance=instance,
        raise_on_error=False,
        resources={
            "lake": LakeResource(url=lake.url),
            "lake_io": LakeIOManager(lake=LakeResource(url=lake.url)),
            "gx": GreatExpectationsResource(),
        },
        **kwargs,
    )


def _lake_files(lake: Lake) -> dict[str, pd.DataFrame | str]:
    """Every file of the lake except landing, keyed by its path inside the lake; volatile fields dropped."""
    root = Path(lake.url)
    files: dict[str, pd.DataFrame | str] = {}
    for path in sorted(root.rglob("*")):
        inside = path.relative_to(root).as_posix()
        if path.is_dir() or inside.startswith("landing/"):
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            files[inside] = frame.drop(
                columns=[c for c in ("validated_at", "fingerprint", "frame_key") if c in frame.columns]
            )
        elif path.name == "gx_result.json":
            files[inside] = "present"  # run ids and timestamps inside
        else:
            files[inside] = path.read_text()
    return files


def _checks(result) -> dict[tuple[str, str | None], bool]:
    return {(e.asset_check_key.to_user_string(), e.partition): e.passed for e in result.get_asset_check_evaluations()}


def test_range_run_equals_one_run_per_partition(tmp_path):
    source = _source(tmp_path)
    assets = build_source_assets(source)
    lake_a, lake_b = Lake(str(tmp_path / "lake_a")), Lake(str(tmp_path / "lake_b"))
    _land(lake_a)
    _land(lake_b)

    instance_a = dg.DagsterInstance.ephemeral()
    ranged = _materialize(assets, lake_a, instance_a, tags=RANGE_TAGS)
    assert ranged.success

    instance_b = dg.DagsterInstance.ephemeral()
    singles = [_materialize(assets, lake_b, instance_b, partition_key=day) for day in DAYS]
    assert all(r.success for r in singles)

    files_a, files_b = _lake_files(lake_a), _lake_files(lake_b)
    assert sorted(files_a) == sorted(files_b)
    for day in DAYS:  # each partition in its own folder, in every zone, with its own quarantine and quality records
        for expected in (
            f"raw/orders/date={day}/data.parquet",
            f"clean/orders/date={day}/data.parquet",
            f"governed/orders/date={day}/data.parquet",
            f"quarantine/orders/date={day}/raw.parquet",
            f"quarantine/orders/date={day}/clean.parquet",
            f"quarantine/orders/date={day}/governed.parquet",
            f"_quality/orders/date={day}/results.parquet",
        ):
            assert expected in files_a, expected
    for name in files_a:
        a, b = files_a[name], files_b[name]
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), obj=name)
        else:
            assert a == b, name

    # Check results: one per check per partition, recorded FOR that partition, same verdicts.
    checks_a = _checks(ranged)
    checks_b = {k: v for r in singles for k, v in _checks(r).items()}
    assert checks_a == checks_b
    assert {p for (_, p) in checks_a} == set(DAYS)
    assert checks_a[("orders/clean:amount__column_mean_to_be_between", "2026-03-03")] is False
    assert checks_a[("orders/clean:amount__column_mean_to_be_between", "2026-03-01")] is True
    assert all(checks_a[(k, d)] for k in ("orders/governed:reconciliation",) for d in DAYS)

    # One materialization per asset per partition, each with its own partition's row count.
    counts_a = {
        (m.asset_key.to_user_string(), m.partition): m.metadata["dagster/row_count"].value
        for m in (e.materialization for e in ranged.get_asset_materialization_events())
    }
    counts_b = {
        (m.asset_key.to_user_string(), m.partition): m.metadata["dagster/row_count"].value
        for r in singles
        for m in (e.materialization for e in r.get_asset_materialization_events())
    }
    assert counts_a == counts_b and len(counts_a) == 9
    assert counts_a[("orders/governed", "2026-03-01")] == 2  # 1 new, 2 paid (dup removed); 3 bogus quarantined

    # The check evaluations point at the materialization of their own partition.
    mats = {
        (r.asset_key.to_user_string(), r.partition_key): r.storage_id
        for r in instance_a.fetch_materializations(dg.AssetKey(["orders", "clean"]), limit=100).records
    }
    for evaluation in ranged.get_asset_check_evaluations():
        if evaluation.asset_key == dg.AssetKey(["orders", "clean"]):
            assert evaluation.target_materialization_data.storage_id == mats[("orders/clean", evaluation.partition)]


def test_blocking_check_failing_in_some_partitions_fails_the_range_and_names_them(tmp_path):
    """A failed blocking check is recorded for the partition it failed on; the clean step of the range
    fails after publishing every partition (as a one-partition run does), so governed runs for none."""
    yaml_text = ORDERS_YAML.replace(
        "expectations:\n",
        "expectations:\n  - {expectation: expect_table_row_count_to_be_between, kwargs: {min_value: 4}}\n",
    )
    (tmp_path / "orders.yaml").write_text(textwrap.dedent(yaml_text))
    source, problems = load_source_file(tmp_path / "orders.yaml")
    assert not problems, problems
    lake = Lake(str(tmp_path / "lake"))
    _land(lake)  # clean rows per day: 3, 4, 3
    result = _materialize(build_source_assets(source), lake, dg.DagsterInstance.ephemeral(), tags=RANGE_TAGS)
    assert not result.success
    verdicts = {
        e.partition: e.passed
        for e in result.get_asset_check_evaluations()
        if e.check_name == "table_row_count_to_be_between"
    }
    assert verdicts == {"2026-03-01": False, "2026-03-02": True, "2026-03-03": False}
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    assert {p for (k, p) in materialized if k == "orders/clean"} == set(DAYS)
    assert not any(k == "orders/governed" for (k, _) in materialized)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "table_row_count_to_be_between" in failure.step_failure_data.error.message


def test_backfill_policy_is_multi_run_and_configurable(tmp_path, monkeypatch):
    source = _source(tmp_path)
    assert backfill_policy_for(source) == dg.BackfillPolicy.multi_run(max_partitions_per_run=92)
    monkeypatch.setenv(BACKFILL_MAX_PARTITIONS_ENV, "7")
    assert all(
        a.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=7) for a in build_source_assets(source)
    )
    monkeypatch.setenv(BACKFILL_MAX_PARTITIONS_ENV, "zero")
    with pytest.raises(ValueError, match=BACKFILL_MAX_PARTITIONS_ENV):
        backfill_policy_for(source)


def test_range_step_logs_its_partitions_warnings_as_one_summary(tmp_path):
    """Each log message is an event written to run storage: a range step's per-partition warnings become
    one summary per level naming every partition (errors would still go out one by one)."""
    source = _source(tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    _land(lake)
    instance = dg.DagsterInstance.ephemeral()
    ranged = _materialize(build_source_assets(source), lake, instance, tags=RANGE_TAGS)
    assert ranged.success
    raw_warnings = [
        e.user_message
        for e in instance.all_logs(ranged.run_id)
        if not e.is_dagster_event and e.step_key == "orders__raw" and e.level == logging.WARNING
    ]
    assert len(raw_warnings) == 1, raw_warnings
    summary = raw_warnings[0]
    assert "orders/raw:" in summary and "from 3 of 3 partition(s)" in summary
    assert all(
        f"[{day}] orders: quarantined" in summary for day in DAYS
    )  # each partition's quarantined lines, by partition

    singles = dg.DagsterInstance.ephemeral()
    one = _materialize(build_source_assets(source), Lake(str(tmp_path / "lake")), singles, partition_key=DAYS[0])
    single_warnings = [
        e
        for e in singles.all_logs(one.run_id)
        if not e.is_dagster_event and e.step_key == "orders__raw" and e.level == logging.WARNING
    ]
    # a one-partition run logs as it goes: one event for the raw quarantine, every quarantined line in it
    assert len(single_warnings) == 1, single_warnings
    assert "orders: quarantined 2 row(s) at raw:" in single_warnings[0].user_message
