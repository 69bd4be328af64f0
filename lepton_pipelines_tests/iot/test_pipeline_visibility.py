"""Through the real device_telemetry pipeline: a replaced reading says so in governed, device restarts
are not loss, a real hole is — in the check and in the device status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from lepton_pipelines.iot.committer import LandingCommitter, PendingBatch
from lepton_pipelines.iot.definitions import device_status, devices
from lepton_pipelines.iot.payloads import parse_telemetry, telemetry_topic
from lepton_pipelines.iot.resource import MqttBrokerResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines_tests.iot.conftest import run_pipeline, zone

pytestmark = pytest.mark.timeout(240)


def land(lake: Lake, records: list[dict]) -> None:
    """Commit records exactly as the collector does (parse, splice lineage, JSONL per event date)."""
    batch = PendingBatch()
    received = datetime.now(UTC)
    for n, record in enumerate(records):
        topic = telemetry_topic(record["device_id"])
        payload = json.dumps(record).encode()
        batch.add(parse_telemetry(topic, payload, received), topic, payload, received, n)
    LandingCommitter(lake, fsync=False).commit(batch)


def check(result, name: str = "device_seq_gaps") -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_a_replaced_reading_says_so_in_governed_and_restarts_are_not_loss(tmp_path):
    lake_dir = tmp_path / "lake"
    lake = Lake(str(lake_dir))
    day = datetime.now(UTC).date()
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    readings = [21.5, 21.7, 21.9, 500.0, 22.0, 21.8]
    records = [
        {"device_id": "pump-1", "boot_id": "b1", "ts": start + i, "seq": i, "temperature": t, "humidity": 40.0}
        for i, t in enumerate(readings)
    ]
    # pump-2 restarts (new boot id, seq from 0 again): not loss. pump-3 restarts without a boot id
    # (reset rule: seq back to 0) and lost seq 2..3 before it; its repeated seqs 0 and 1 are kept,
    # being other messages (other ts) than the first 0 and 1.
    records += [
        {"device_id": "pump-2", "boot_id": "a", "ts": start + i, "seq": 100 + i, "temperature": 20.0} for i in range(3)
    ]
    records += [
        {"device_id": "pump-2", "boot_id": "b", "ts": start + 10 + i, "seq": i, "temperature": 20.0} for i in range(3)
    ]
    records += [
        {"device_id": "pump-3", "ts": start + i, "seq": s, "temperature": 19.0} for i, s in enumerate([0, 1, 4, 0, 1])
    ]
    # pump-1's seq 6 is a bad payload: quarantined, so accounted for — not a hole.
    records += [
        {"device_id": "pump-1", "boot_id": "b1", "ts": start + 6, "seq": 6, "temperature": "hot"},
        {"device_id": "pump-1", "boot_id": "b1", "ts": start + 7, "seq": 7, "temperature": 21.6, "humidity": 40.0},
    ]
    land(lake, records)
    land(lake, records[:6])  # pump-1 redelivered after a lost connection: duplicates, not new messages

    result = run_pipeline(lake_dir, day.isoformat())
    assert result.success
    governed = zone(lake_dir, "governed", day.isoformat())
    pump1 = governed[governed["device_id"] == "pump-1"].sort_values("seq").reset_index(drop=True)
    assert pump1.loc[3, "temperature"] == 21.9  # nulled as impossible, then forward-filled ...
    replaced = json.loads(pump1.loc[3, "_replaced"])  # ... and the row says so
    assert replaced["temperature"]["original"] == 500.0
    assert replaced["temperature"]["rule"] == "valid_range -> impute" and replaced["temperature"]["action"] == "filled"
    assert len(pump1) == 7 and pump1["_replaced"].isna().sum() == 6  # duplicates gone; nothing else touched
    assert len(governed[governed["device_id"] == "pump-2"]) == 6
    assert len(governed[governed["device_id"] == "pump-3"]) == 5  # (device_id, seq, ts) is the key

    gaps = check(result)
    assert not gaps.passed
    assert gaps.metadata["missing_ranges"].value == {"pump-3": "2-3"}  # pump-2's restart is not loss
    assert gaps.metadata["missing_messages"] == dg.IntMetadataValue(2)

    lake_url = str(lake_dir)
    status = (
        dg.materialize(
            [devices, device_status],
            resources={
                "lake": LakeResource(url=lake_url),
                "lake_io": LakeIOManager(lake=LakeResource(url=lake_url)),
                "mqtt": MqttBrokerResource(),
            },
        )
        .output_for_node("iot__device_status")
        .set_index("device_id")
    )
    assert status.loc["pump-3", "missing_messages"] == 2 and status.loc["pump-3", "missing_ranges"] == "2-3"
    assert status.loc["pump-1", "missing_messages"] == 0 and status.loc["pump-2", "missing_messages"] == 0


def test_gap_across_midnight_is_found_by_the_later_partition(tmp_path):
    lake_dir = tmp_path / "lake"
    lake = Lake(str(lake_dir))
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    midnight = int(datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp())
    land(
        lake, [{"device_id": "m-1", "ts": midnight - 10 + i, "seq": i, "temperature": 20.0} for i in range(5)]
    )  # 0..4 yesterday
    land(
        lake,
        [{"device_id": "m-1", "ts": midnight + i, "seq": s, "temperature": 20.0} for i, s in enumerate(range(8, 12))],
    )
    assert run_pipeline(lake_dir, yesterday.isoformat()).success
    result = run_pipeline(lake_dir, today.isoformat())
    gaps = check(result)
    assert not gaps.passed and gaps.metadata["missing_ranges"].value == {"m-1": "5-7"}
    assert "m-1: 5-7" in gaps.description
