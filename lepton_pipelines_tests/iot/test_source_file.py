"""The collector and the IoT wiring read ``device_telemetry`` through the source contract's loader: the same
settings as the code location's registry, and the same message for the same mistake."""

from __future__ import annotations

import pytest
import yaml

from lepton_pipelines.contract.documents import SourceRegistryError, read_document
from lepton_pipelines.iot import definitions as iot_definitions
from lepton_pipelines.iot.collector import SHIPPED_SOURCE_FILE, declared_columns, load_source_settings, read_mqtt_source
from lepton_pipelines.sources.registry import load_source_file, load_sources


def test_collector_and_iot_wiring_see_the_registrys_device_telemetry():
    registry = next(s for s in load_sources() if s.name == "device_telemetry")
    spec, settings = read_mqtt_source(SHIPPED_SOURCE_FILE)
    assert settings == registry.connector.settings
    assert spec.model_dump() == registry.spec.model_dump()
    assert iot_definitions.SETTINGS == settings and iot_definitions.COLUMNS == declared_columns(registry.spec)
    assert iot_definitions.PARTITIONS.start.strftime("%Y-%m-%d") == registry.spec.start_date


def test_a_bad_connector_setting_reads_the_same_in_the_collector_and_the_registry(tmp_path):
    fields, _ = read_document(SHIPPED_SOURCE_FILE)
    fields["connector"]["receive_maximum"] = "lots"
    fields["schema"][0]["type"] = "text"
    file = tmp_path / "device_telemetry.yaml"  # a plain source file, as in LEPTON_SOURCES_PATH
    file.write_text(yaml.safe_dump(fields, sort_keys=False))

    _, registry_problems = load_source_file(file)
    with pytest.raises(SourceRegistryError) as error:
        read_mqtt_source(file)
    assert error.value.problems == registry_problems  # the spec's problem stops both before the connector
    assert "schema[device_id].type: 'text' is not a column type" in registry_problems[0]

    fields["schema"][0]["type"] = "string"
    file.write_text(yaml.safe_dump(fields, sort_keys=False))
    _, registry_problems = load_source_file(file)
    with pytest.raises(SourceRegistryError) as error:
        read_mqtt_source(file)
    assert error.value.problems == registry_problems
    assert registry_problems[0].startswith(f"{file}: connector.receive_maximum:")
    with pytest.raises(SystemExit, match="connector.receive_maximum"):
        load_source_settings(file)
