from __future__ import annotations

import pytest

from lepton_pipelines.cleaning import ColumnInfo, TableInfo


@pytest.fixture
def telemetry() -> TableInfo:
    """A small IoT table: key (device_id, seq), event time ts, numeric readings, a text site column."""
    return TableInfo(
        source="telemetry",
        columns=(
            ColumnInfo("device_id", "string", nullable=False),
            ColumnInfo("seq", "integer", nullable=False),
            ColumnInfo("ts", "timestamp"),
            ColumnInfo("temperature", "float"),
            ColumnInfo("battery", "integer"),
            ColumnInfo("site", "string"),
            ColumnInfo("active", "boolean"),
        ),
        primary_key=("device_id", "seq"),
        event_time="ts",
    )
