"""The landing sensor batches: one run per source and range of consecutive changed partitions per tick."""

from __future__ import annotations

import uuid

import boto3
import dagster as dg
import pytest

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.sources.automation import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    build_source_jobs,
    consecutive_chunks,
    plan_landing_runs,
    source_job_name,
)
from lepton_pipelines.sources.factory import BACKFILL_MAX_PARTITIONS_ENV, build_source_assets

from .test_backfill_range import LANDED, _land, _source

pytestmark = pytest.mark.timeout(300)


def _drop(lake: Lake, day: str, name: str, text: str = "order_id,status,amount\n1,new,1\n") -> None:
    folder = lake.path("landing", "orders", f"date={day}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_consecutive_chunks_split_at_gaps_and_at_the_per_run_cap():
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-05", "2026-03-06", "2026-04-01"]
    assert consecutive_chunks(days, 31) == [days[:3], days[3:5], days[5:]]
    assert consecutive_chunks(days, 2) == [days[:2], days[2:3], days[3:5], days[5:]]


def test_changed_partitions_become_range_runs_and_each_file_version_runs_once(tmp_path, monkeypatch):
    source = _source(tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    for day in ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-07"):
        _drop(lake, day, "a.csv")
        _drop(lake, day, "b.csv")
    first = plan_landing_runs([source], lake)
    spans = [
        (r.partition_key, r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG), r.tags["lepton/landing-files"])
        for r in first.requests
    ]
    assert spans == [(None, "2026-03-01", "2026-03-03", "6"), ("2026-03-07", None, None, "2")]
    assert {r.job_name for r in first.requests} == {source_job_name("orders")}

    assert plan_landing_runs([source], lake, first.cursor).requests == []  # nothing new
    _drop(lake, "2026-03-02", "c.csv")  # a new file in the middle: only that partition runs again
    second = plan_landing_runs([source], lake, first.cursor)
    assert [(r.partition_key, r.tags["lepton/landing-files"]) for r in second.requests] == [("2026-03-02", "3")]
    assert second.requests[0].run_key not in {r.run_key for r in first.requests}
    # the same tick evaluated again (cursor update lost) asks for the same run key: Dagster launches it once
    assert [r.run_key for r in plan_landing_runs([source], lake, first.cursor).requests] == [second.requests[0].run_key]

    monkeypatch.setenv(BACKFILL_MAX_PARTITIONS_ENV, "2")  # the backfill policy's cap bounds a landing batch too
    capped = plan_landing_runs([source], lake)
    assert [(r.partition_key, r.tags.get(RANGE_START_TAG)) for r in capped.requests] == [
        (None, "2026-03-01"),
        ("2026-03-03", None),
        ("2026-03-07", None),
    ]


def test_a_range_request_runs_the_source_job_over_the_range(tmp_path):
    """The run a batched request launches: the source job (in-process executor) over a partition range."""
    source = _source(tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    _land(lake)
    [request] = plan_landing_runs([source], lake).requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (min(LANDED), max(LANDED))
    defs = dg.Definitions(
        assets=build_source_assets(source),
        jobs=build_source_jobs([source]),
        resources={
            "lake": LakeResource(url=lake.url),
            "lake_io": LakeIOManager(lake=LakeResource(url=lake.url)),
            "gx": GreatExpectationsResource(),
        },
    )
    job = defs.resolve_job_def(request.job_name)
    assert job.executor_def.name == "in_process"
    result = job.execute_in_process(tags=request.tags, raise_on_error=False)
    assert result.success
    governed = {
        e.partition
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["orders", "governed"])
    }
    assert governed == set(LANDED)
    assert all(lake.table_dir("governed", "orders", day).joinpath("data.parquet").exists() for day in LANDED)


def test_s3_landing_listing_is_paginated(moto_s3_endpoint, monkeypatch, tmp_path):
    """More files than one S3 listing page (1,000 keys): every one is seen and batched."""
    bucket = f"landing-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    count = 1_150
    for i in range(count):
        client.put_object(
            Bucket=bucket,
            Key=f"lake/landing/orders/date={days[i % 3]}/part-{i:05d}.csv",
            Body=b"order_id,status,amount\n1,new,1\n",
        )
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    lake = Lake(f"s3://{bucket}/lake", moto_s3_endpoint)
    plan = plan_landing_runs([_source(tmp_path)], lake)
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in plan.requests] == [("2026-03-01", "2026-03-03")]
    assert int(plan.requests[0].tags["lepton/landing-files"]) == count
    assert sorted(plan.cursor["orders"]) == days


def test_days_before_start_date_are_named_with_the_fix_not_requested(tmp_path):
    """Old data and a start_date left at its default: the sensor says which days and what to set, instead
    of requesting runs Dagster would refuse with a generic partition-key error."""
    source = _source(tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    _drop(lake, "2013-01-01", "old.csv")
    _drop(lake, "2026-03-02", "a.csv")
    plan = plan_landing_runs([source], lake)
    assert [r.partition_key for r in plan.requests] == ["2026-03-02"]
    assert len(plan.outside) == 1 and plan.outside[0].startswith(
        "orders: 1 landed file(s) in date=2013-01-01, before the source's start_date"
    )
    assert '(quoted, e.g. "2013-01-01")' in plan.outside[0]
