"""The lake IO manager through real Dagster materializations, on local disk and on S3 (moto over HTTP)."""

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource

DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")


@dg.asset(key=["orders", "clean"], partitions_def=DAILY, io_manager_key="lake_io")
def orders_clean(context: dg.AssetExecutionContext) -> pd.DataFrame:
    day = int(context.partition_key[-2:])
    return pd.DataFrame({"order_id": [f"o{day}-{i}" for i in range(day)], "amount": [float(i) for i in range(day)]})


@dg.asset(
    key=["orders", "governed"],
    partitions_def=DAILY,
    io_manager_key="lake_io",
    ins={"clean": dg.AssetIn(["orders", "clean"])},
)
def orders_governed(clean: pd.DataFrame) -> pd.DataFrame:
    return clean[clean["amount"] > 0]


@dg.asset(key=["reports", "daily_summary"], io_manager_key="lake_io")
def summary() -> pd.DataFrame:
    return pd.DataFrame({"k": ["a"], "v": [1]})


@pytest.mark.parametrize("lake_fixture", ["tmp_lake", "s3_lake"])
def test_materialize_writes_the_contract_layout_and_reads_back(lake_fixture, request):
    lake = request.getfixturevalue(lake_fixture)
    resources = {
        "lake_io": LakeIOManager(lake=LakeResource())
    }  # url from LEPTON_LAKE_URL, endpoint from LEPTON_S3_ENDPOINT_URL
    for day in ("2026-11-24", "2026-11-25"):
        result = dg.materialize([orders_clean, orders_governed], partition_key=day, resources=resources)
        assert result.success

    governed = lake.read_table("governed", "orders", "2026-11-25")
    assert len(governed) == 24 and governed["amount"].min() > 0
    assert lake.partitions("clean", "orders") == ["2026-11-24", "2026-11-25"]
    assert (lake.table_dir("clean", "orders", "2026-11-24") / "data.parquet").exists()

    mat = result.asset_materializations_for_node("orders__clean")[0]
    meta = mat.metadata
    assert meta["dagster/row_count"].value == 25
    assert meta["byte_size"].value > 0
    assert meta["path"].value.rstrip("/").endswith("clean/orders/date=2026-11-25")
    assert [c.name for c in meta["dagster/column_schema"].value.columns] == ["order_id", "amount"]
    assert "o25-0" in meta["preview"].value


def test_unpartitioned_assets_and_non_zone_keys(tmp_lake):
    result = dg.materialize([summary], resources={"lake_io": LakeIOManager(lake=LakeResource())})
    assert result.success
    assert (tmp_lake.path("_assets", "reports", "daily_summary") / "data.parquet").exists()


def test_rematerializing_a_partition_replaces_it(tmp_lake):
    resources = {"lake_io": LakeIOManager(lake=LakeResource())}
    dg.materialize([orders_clean], partition_key="2026-11-05", resources=resources)
    first = tmp_lake.read_table("clean", "orders", "2026-11-05")
    dg.materialize([orders_clean], partition_key="2026-11-05", resources=resources)
    pd.testing.assert_frame_equal(tmp_lake.read_table("clean", "orders", "2026-11-05"), first)
    assert [p.name for p in tmp_lake.table_dir("clean", "orders", "2026-11-05").iterdir()] == ["data.parquet"]


def test_non_dataframe_outputs_are_refused_with_the_asset_named(tmp_lake):
    @dg.asset(key=["bad", "raw"], io_manager_key="lake_io")
    def bad() -> dict:
        return {"not": "a frame"}

    with pytest.raises(Exception, match="bad/raw.*pandas DataFrames"):
        dg.materialize([bad], resources={"lake_io": LakeIOManager(lake=LakeResource())})
