"""The IoT Dagster assets on a real lake folder: registry + discovered devices → devices → device_status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.iot.definitions import (
    LANDING_KEY,
    MQTT_CLIENT_TAG,
    SETTINGS,
    defs,
    device_status,
    devices,
)
from lepton_pipelines.iot.resource import MqttBrokerResource
from lepton_pipelines.lake.io_manager import LakeIOManager
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.resources import bind_resources

pytestmark = pytest.mark.timeout(120)


def test_definitions_expose_drain_checks_and_non_overlapping_tag():
    repo = bind_resources(defs).get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {"device_telemetry/landing", "iot/devices", "iot/device_status"} <= keys
    landing = repo.asset_graph.get(LANDING_KEY)
    assert landing.assets_def.op.tags[MQTT_CLIENT_TAG] == SETTINGS.client_id
    check_names = {key.name for key in repo.asset_graph.asset_check_keys}
    assert {"broker_dropped_messages", "all_devices_registered"} <= check_names


def test_devices_and_status_from_registry_and_clean_telemetry(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    now = datetime.now(UTC)
    today = now.date().isoformat()
    lake.path("landing", "devices").mkdir(parents=True)
    lake.path("landing", "devices", "registry.yaml").write_text(
        "devices:\n  - {device_id: pump-1, type: pump, site: north, owner: ops}\n  - {device_id: pump-2, type: pump, "
        "site: south}\n"
    )
    clean = pd.DataFrame(
        {
            "device_id": ["pump-1", "pump-1", "rogue-9"],
            "ts": pd.to_datetime(
                [now - timedelta(minutes=3), now - timedelta(minutes=2), now - timedelta(hours=3)], utc=True
            ),
            "seq": [1, 2, 1],
            "temperature": [20.0, 20.5, 30.0],
            "humidity": [40.0, 41.0, 50.0],
            "vibration": [0.1, 0.1, 0.2],
            "battery": [90.0, 89.5, 10.0],
            "firmware": ["3.1", "3.1", "0.1"],
        }
    )
    lake.write_table("clean", "device_telemetry", today, clean)

    result = dg.materialize(
        [devices, device_status],
        resources={
            "lake": LakeResource(url=lake.url),
            "lake_io": LakeIOManager(lake=LakeResource(url=lake.url)),
            "mqtt": MqttBrokerResource(),
        },
    )
    assert result.success
    table = result.output_for_node("iot__devices").set_index("device_id")
    assert table.loc["rogue-9", "registered"] == False and table.loc["pump-2", "messages"] == 0  # noqa: E712
    status = result.output_for_node("iot__device_status").set_index("device_id")
    assert status.loc["pump-1", "status"] == "online"
    assert status.loc["rogue-9", "status"] == "offline"
    assert status.loc["pump-2", "status"] == "never_seen"
    assert status.loc["pump-1", "battery"] == 89.5
    # Stored by the lake IO manager beside the other non-source tables.
    assert (tmp_path / "lake" / "_assets" / "iot" / "devices" / "data.parquet").exists()
    materialization = result.asset_materializations_for_node("iot__devices")[0]
    assert materialization.metadata["unregistered"] == dg.IntMetadataValue(1)
