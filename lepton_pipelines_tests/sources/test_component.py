"""Sources as a Dagster Component: ``dg check defs`` / ``dg list defs`` / ``dg scaffold defs`` on this
repository, and one validation path (the component and ``load_sources()`` say the same thing).

``dg`` runs as a subprocess, as a user runs it; each call loads the code location (~5-15 s), so the
calls are few and each asserts several things.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from lepton_pipelines.contract.documents import SHIPPED_SOURCES, shipped_source_file
from lepton_pipelines.sources.component import SourceComponent, skeleton_attributes
from lepton_pipelines.sources.registry import SourceRegistryError, load_sources

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"
COMPONENT_TYPE = "lepton_pipelines.sources.component.SourceComponent"
SHIPPED_NAMES = sorted(p.name for p in SHIPPED_SOURCES.iterdir() if (p / "defs.yaml").is_file())


def run_dg(*args: str, cwd: Path, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").touch()
    environment = {**os.environ, "DAGSTER_HOME": str(home), **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(cwd), str(REPO), environment.get("PYTHONPATH", "")) if p
    )
    return subprocess.run([str(DG), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def defs_package(tmp_path: Path) -> tuple[str, Path]:
    """A throwaway importable package with an empty defs folder (a dg project of its own)."""
    name = f"lepton_tmp_{uuid.uuid4().hex[:8]}"
    defs = tmp_path / name / "defs"
    defs.mkdir(parents=True)
    (tmp_path / name / "__init__.py").touch()
    (defs / "__init__.py").touch()
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "{name}"\n'
        f'defs_module = "{name}.defs"\nregistry_modules = ["lepton_pipelines.sources.component"]\n'
    )
    return name, defs


def component_sources(tmp_path: Path, package: str) -> list[SourceComponent]:
    sys.path.insert(0, str(tmp_path))
    try:
        tree = dg.ComponentTree.from_module(
            defs_module=importlib.import_module(f"{package}.defs"), project_root=tmp_path
        )
        return tree.get_all_components(of_type=SourceComponent)
    finally:
        sys.path.remove(str(tmp_path))


def test_shipped_sources_are_component_files_that_the_plain_loader_reads_too():
    assert SHIPPED_NAMES == ["customers", "device_telemetry", "fx_rates", "market_data", "transactions"]
    for name in SHIPPED_NAMES:
        document = yaml.safe_load(shipped_source_file(name).read_text())
        assert document["type"] == COMPONENT_TYPE and document["attributes"]["name"] == name
    assert [s.name for s in load_sources([SHIPPED_SOURCES])] == SHIPPED_NAMES


def test_component_and_loader_report_a_bad_source_with_the_same_messages(tmp_path):
    package, defs = defs_package(tmp_path)
    attributes = skeleton_attributes("orders")
    attributes["ownr"] = attributes.pop("owner")  # typo
    attributes["schema"][1]["type"] = "datetime"  # not a column type
    attributes["cleaning"].append({"rule": "dedupe"})  # not a rule
    folder = defs / "sources" / "orders"
    folder.mkdir(parents=True)
    (folder / "defs.yaml").write_text(
        yaml.safe_dump({"type": COMPONENT_TYPE, "attributes": attributes}, sort_keys=False)
    )

    with pytest.raises(SourceRegistryError) as loader_error:
        load_sources([defs / "sources"])
    [component] = component_sources(tmp_path, package)
    assert component.problems == loader_error.value.problems
    text = "\n".join(component.problems)
    assert "orders/defs.yaml: ownr: unknown field (did you mean 'owner'?)" in text
    assert "orders/defs.yaml: owner: required field is missing" in text
    assert "schema[event_ts].type: 'datetime' is not a column type" in text
    # the spec's errors stop the document there; a spec that validates gets its rules checked too
    attributes["owner"] = attributes.pop("ownr")
    attributes["schema"][1]["type"] = "timestamp"
    (folder / "defs.yaml").write_text(
        yaml.safe_dump({"type": COMPONENT_TYPE, "attributes": attributes}, sort_keys=False)
    )
    [component] = component_sources(tmp_path, package)
    assert len(component.problems) == 1 and "cleaning[2].rule: 'dedupe' is not a cleaning rule" in component.problems[0]
    with pytest.raises(SourceRegistryError, match="dedupe"):
        component.build_defs(None)  # type: ignore[arg-type]  (a bad source never builds half its assets)


def test_dg_check_defs_passes_and_list_defs_shows_every_source_with_its_checks(tmp_path):
    check = run_dg("check", "defs", cwd=REPO, tmp_path=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All definitions loaded successfully." in check.stdout

    listed = run_dg("list", "defs", "--json", cwd=REPO, tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"]: a for a in defs["assets"]}
    checks = {(c["asset_key"], c["name"]) for c in defs["asset_checks"]}
    for name in SHIPPED_NAMES:
        for stage in ("raw", "clean", "governed"):
            assert assets[f"{name}/{stage}"]["group_name"] == name
        assert {
            (f"{name}/raw", "schema_drift"),
            (f"{name}/clean", "primary_key_unique"),
            (f"{name}/governed", "reconciliation"),
        } <= checks
    # every check of a source points at its component file
    sources = {
        c["asset_key"]: c.get("source", "") for c in defs["asset_checks"] if c["asset_key"] == "transactions/clean"
    }
    assert all("defs/sources/transactions/defs.yaml" in s for s in sources.values())


def test_dg_check_defs_fails_with_the_registry_message_for_a_bad_extra_source(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    attributes = skeleton_attributes("orders")
    attributes["ownr"] = attributes.pop("owner")
    (extra / "orders.yaml").write_text(yaml.safe_dump(attributes, sort_keys=False))
    result = run_dg("check", "defs", cwd=REPO, tmp_path=tmp_path, env={"LEPTON_SOURCES_PATH": str(extra)})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{extra / 'orders.yaml'}: ownr: unknown field (did you mean 'owner'?)" in output
    assert "All definitions loaded successfully." not in output


def test_dg_scaffold_defs_creates_a_source_that_loads(tmp_path):
    package, defs = defs_package(tmp_path)
    result = run_dg("scaffold", "defs", COMPONENT_TYPE, "sources/shipments", cwd=tmp_path, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    file = defs / "sources" / "shipments" / "defs.yaml"
    assert yaml.safe_load(file.read_text())["type"] == COMPONENT_TYPE
    [source] = load_sources([defs / "sources"])
    assert source.name == "shipments" and source.spec.primary_key == ["id"]
    [component] = component_sources(tmp_path, package)
    assert component.problems == [] and component.source is not None and component.source.spec.origin == str(file)
