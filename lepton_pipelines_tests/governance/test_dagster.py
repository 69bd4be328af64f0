"""Through Dagster itself: blocking checks stop governed; freshness, scorecard and catalog assets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.governance import (
    GovernanceContext,
    GreatExpectationsResource,
    build_governance_defs,
    certify,
    clean_check_specs,
    evaluate_clean,
    governed_check_specs,
)
from lepton_pipelines.governance.checks import contract_results
from lepton_pipelines.lake.resource import LakeResource

from .conftest import cleaning_for, good_orders, orders_source

pytestmark = pytest.mark.timeout(180)
PK = "2026-03-01"


def asset_pair(source, frame: pd.DataFrame, lake_url: str):
    """A minimal clean → governed pair that calls governance the way the asset factory does."""
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")

    @dg.asset(key=["orders", "clean"], partitions_def=partitions, check_specs=clean_check_specs(source))
    def clean(context, gx: GreatExpectationsResource, lake: LakeResource):
        ctx = GovernanceContext(source, lake.get(), context.partition_key, gx, context.log)
        yield dg.Output(None)
        yield from evaluate_clean(ctx, frame, cleaning_for(frame))
        yield from contract_results(ctx, 0, [], 0, [])  # required_values, late_arrival

    @dg.asset(
        key=["orders", "governed"], partitions_def=partitions, deps=[clean], check_specs=governed_check_specs(source)
    )
    def governed(context, gx: GreatExpectationsResource, lake: LakeResource):
        result = certify(
            GovernanceContext(source, lake.get(), context.partition_key, gx, context.log), frame, cleaning_for(frame)
        )
        yield dg.Output(None, metadata={"quarantined_rows": result.quarantined_rows})
        yield from result.check_results

    return [clean, governed]


def run(assets, lake_url, instance=None):
    return dg.materialize(
        assets,
        partition_key=PK,
        instance=instance,
        raise_on_error=False,
        resources={"gx": GreatExpectationsResource(), "lake": LakeResource(url=lake_url)},
    )


def test_failed_blocking_check_stops_governed_and_names_the_check(tmp_path):
    source = orders_source(tmp_path)
    frame = pd.concat([good_orders(), good_orders().iloc[[0]]], ignore_index=True)  # duplicate key
    result = run(asset_pair(source, frame, str(tmp_path / "lake")), str(tmp_path / "lake"))
    assert not result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["orders", "governed"]) not in materialized
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "primary_key_unique" in failure.step_failure_data.error.message
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["primary_key_unique"].passed
    assert checks["amount__column_values_to_be_between"].passed


def test_quarantine_failures_warn_and_governed_materializes(tmp_path):
    source = orders_source(tmp_path)
    frame = good_orders()
    frame.loc[0, "status"] = "bogus"
    result = run(asset_pair(source, frame, str(tmp_path / "lake")), str(tmp_path / "lake"))
    assert result.success
    governed = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["orders", "governed"])
    ]
    assert governed and governed[0].materialization.metadata["quarantined_rows"].value == 1


def test_freshness_judges_the_age_of_the_newest_event_not_the_run_time(tmp_path, lake):
    """A run today over 2013 data is not fresh: the check reads the newest event time in governed."""
    source = orders_source(tmp_path, max_lag="2d")
    defs = dg.Definitions.merge(
        build_governance_defs([source]), dg.Definitions(resources={"lake": LakeResource(url=lake.url)})
    )
    job = defs.resolve_job_def("lepton_freshness_checks")
    instance = dg.DagsterInstance.ephemeral()

    def evaluate() -> dg.AssetCheckEvaluation:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        return next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).asset_check_evaluation_data

    assert not evaluate().passed  # nothing governed yet
    old = good_orders().assign(created_at=pd.Timestamp("2013-01-01 09:00", tz="UTC"))
    lake.write_table("governed", "orders", "2013-01-01", old)
    stale = evaluate()
    assert (
        not stale.passed
        and "2013-01-01T09:00:00+00:00" in stale.description
        and "older than max_lag 2.0d" in stale.description
    )
    today = datetime.now(UTC)
    recent = good_orders().assign(created_at=pd.Timestamp(today - timedelta(hours=3)))
    lake.write_table("governed", "orders", str(today.date()), recent)
    fresh = evaluate()
    assert fresh.passed, fresh.description
    assert 2.9 < fresh.metadata["data_age_hours"].value < 3.5


def test_scorecard_and_catalog_summarize_the_lake(tmp_path, lake):
    source = orders_source(tmp_path)
    gx = GreatExpectationsResource()
    import logging

    for pk, bad in (("2026-03-01", False), ("2026-03-02", True)):
        frame = good_orders()
        if bad:
            frame.loc[0, "status"] = "bogus"
        ctx = GovernanceContext(source, lake, pk, gx, logging.getLogger("t"))
        evaluate_clean(ctx, frame, cleaning_for(frame))
        governed = certify(ctx, frame, cleaning_for(frame)).frame
        lake.write_table("clean", "orders", pk, frame)
        lake.write_table("governed", "orders", pk, governed)
    defs = build_governance_defs([source])
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(assets, resources={"lake": LakeResource(url=lake.url), "gx": gx})
    assert result.success
    by_source = pd.read_parquet(lake.path("_quality", "_scorecard", "by_source.parquet").path)
    row = by_source.set_index("source").loc["orders"]
    assert row["checks"] == 16 and row["failed"] == 1 and row["quarantined_rows"] == 1  # 2 partitions × 8 checks
    per_day = pd.read_parquet(lake.path("_quality", "_scorecard", "by_partition.parquet").path)
    assert per_day["pass_rate"].tolist() == [1.0, pytest.approx(7 / 8)]
    scorecard = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "quality_scorecard"
    ).materialization.metadata
    assert (
        "data:image/png;base64," in scorecard["chart"].value and "| orders | 16 | 15 | 1 |" in scorecard["chart"].value
    )
    assert [(r.data["source"], r.data["checks"], r.data["passed"]) for r in scorecard["scorecard"].records] == [
        ("orders", 16, 15)
    ]
    assert scorecard["orders pass rate"].value.startswith("![orders pass rate](data:image/svg+xml,")
    catalog = pd.read_parquet(lake.path("_catalog", "catalog.parquet").path).set_index("dataset")
    assert set(catalog.index) == {"orders/clean", "orders/governed", "orders/quarantine"}
    assert catalog.loc["orders/governed", "row_count"] == 11 and catalog.loc["orders/quarantine", "row_count"] == 1
    assert (
        catalog.loc["orders/governed", "owner"] == "team:test"
        and catalog.loc["orders/governed", "upstream"] == "orders/clean"
    )
    assert catalog.loc["orders/governed", "quality_score"] == pytest.approx(7 / 8, rel=1e-3)
    assert '"description": "Amount in EUR"' in catalog.loc["orders/governed", "schema"]
