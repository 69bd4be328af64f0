"""The source registry: shipped sources load; every bad file is reported at once, naming file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lepton_pipelines.contract.documents import SHIPPED_SOURCES
from lepton_pipelines.sources.registry import SourceRegistryError, load_sources

GOOD = """
name: {name}
description: A test source.
owner: team:test
connector: {{type: file, format: csv}}
schema:
  - {{name: id, type: string, nullable: false}}
  - {{name: ts, type: timestamp}}
  - {{name: amount, type: float}}
primary_key: [id]
event_time: ts
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_registry_loads_every_sample_source():
    names = [s.name for s in load_sources([SHIPPED_SOURCES])]
    assert {"transactions", "customers", "market_data", "fx_rates", "device_telemetry"} <= set(names)


def test_sources_path_adds_sources_without_python(tmp_path, monkeypatch):
    extra = tmp_path / "more"
    write(extra, "payments", GOOD.format(name="payments"))
    monkeypatch.setenv("LEPTON_SOURCES_PATH", str(extra))
    names = [s.name for s in load_sources()]
    assert "payments" in names and "transactions" in names


def test_every_problem_in_every_file_is_reported_together(tmp_path):
    folder = tmp_path / "reg"
    write(folder, "alpha", GOOD.format(name="alpha").replace("type: float", "type: money"))
    write(folder, "beta", GOOD.format(name="beta").replace("primary_key: [id]", "primary_key: [missing_col]"))
    write(folder, "gamma", GOOD.format(name="gamma").replace("type: file, format: csv", "type: ftp"))
    write(folder, "delta", GOOD.format(name="delta") + "colour: blue\n")
    write(folder, "epsilon", GOOD.format(name="Epsilon"))
    write(folder, "zeta", "name: [unclosed\n")
    write(folder, "ok", GOOD.format(name="ok"))
    with pytest.raises(SourceRegistryError) as info:
        load_sources([folder])
    text = str(info.value)
    problems = info.value.problems
    assert any(
        "alpha.yaml" in p and "schema[amount].type" in p and "string" in p and "timestamp" in p for p in problems
    ), text
    assert any("beta.yaml" in p and "primary_key" in p and "missing_col" in p for p in problems), text
    assert any("gamma.yaml" in p and "connector.type" in p and "'ftp'" in p and "file" in p for p in problems), text
    assert any("delta.yaml" in p and "colour" in p and "unknown field" in p for p in problems), text
    assert any("epsilon.yaml" in p and "name" in p for p in problems), text
    assert any("zeta.yaml" in p and "not valid YAML" in p for p in problems), text
    assert not any("ok.yaml" in p for p in problems)


def test_bad_cleaning_rule_and_connector_settings_name_the_entry(tmp_path):
    folder = tmp_path / "reg"
    text = GOOD.format(name="rules") + textwrap.dedent(
        """
        cleaning:
          - {rule: trim}
          - {rule: sparkle}
          - {rule: valid_range, column: amount, min: 10, max: 1, action: drop}
        """
    )
    write(folder, "rules", text.replace("format: csv", "format: xlsx"))
    with pytest.raises(SourceRegistryError) as info:
        load_sources([folder])
    problems = info.value.problems
    assert any("cleaning[1].rule" in p and "'sparkle'" in p and "deduplicate" in p for p in problems), problems
    assert any("cleaning[2]" in p for p in problems), problems
    assert any("connector.format" in p for p in problems), problems


def test_duplicate_source_names_across_folders_are_rejected(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "dup", GOOD.format(name="dup"))
    write(b, "dup", GOOD.format(name="dup"))
    with pytest.raises(SourceRegistryError, match="already declared"):
        load_sources([a, b])


def test_a_missing_sources_path_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_SOURCES_PATH", str(tmp_path / "nope"))
    with pytest.raises(SourceRegistryError, match="does not exist"):
        load_sources()


def test_connector_blocks_are_one_discriminated_union_with_messages_per_type(tmp_path):
    folder = tmp_path / "reg"
    write(folder, "untyped", GOOD.format(name="untyped").replace("type: file, format: csv", "format: csv"))
    write(folder, "typo", GOOD.format(name="typo").replace("format: csv", "format: csv, delimitr: ';'"))
    write(folder, "api", GOOD.format(name="api").replace("type: file, format: csv", "type: http, retries: -1"))
    with pytest.raises(SourceRegistryError) as info:
        load_sources([folder])
    problems = info.value.problems
    assert (
        f"{folder / 'untyped.yaml'}: connector.type: required field is missing; allowed: file, http, mqtt, sql"
        in problems
    )
    assert any(
        p.startswith(
            f"{folder / 'typo.yaml'}: connector.delimitr: unknown field (did you mean 'delimiter'?); "
            f"allowed here (type file): "
        )
        for p in problems
    ), problems
    # the http Settings' own fields, not the file type's nor the tag in the location
    assert f"{folder / 'api.yaml'}: connector.url: required field is missing" in problems, problems
    assert any(p.startswith(f"{folder / 'api.yaml'}: connector.retries: ") and "(got -1)" in p for p in problems), (
        problems
    )
    assert not any("http.url" in p or "format" in p for p in problems if "api.yaml" in p), problems
