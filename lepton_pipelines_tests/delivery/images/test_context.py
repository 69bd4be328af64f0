"""Build-context assembly and image naming: pure file logic, no Docker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lepton_pipelines.delivery.images.builder import DEFAULT_SERVICE_DIR, WheelTarget
from lepton_pipelines.delivery.images.context import (
    ModelArtifactError,
    assemble_build_context,
    image_labels,
    image_reference,
    pinned_requirements,
    read_model_card,
)

from .conftest import library_versions, write_model_artifact


def _fake_wheels(directory: Path, versions: dict[str, str], extra: dict[str, str] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name, version in {**versions, **(extra or {})}.items():
        wheel = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        wheel.write_bytes(b"wheel " + name.encode())
        wheels.append(wheel)
    return wheels


@pytest.fixture
def artifact(tmp_path) -> Path:
    directory = tmp_path / "lake" / "models" / "pumps" / "v3"
    write_model_artifact(directory, "pumps", "v3")
    (directory / "training_sample.parquet").write_bytes(b"not for the image")
    return directory


def test_context_holds_service_model_lock_and_wheels_only(artifact, tmp_path):
    wheels = _fake_wheels(tmp_path / "wheels", library_versions(), extra={"threadpoolctl": "3.8.0"})
    context = assemble_build_context(DEFAULT_SERVICE_DIR, artifact, tmp_path / "ctx", wheels)

    root = context.path
    assert (root / "Dockerfile").read_text() == (DEFAULT_SERVICE_DIR / "Dockerfile").read_text()
    assert (root / "app" / "lepton_model_service" / "server.py").exists()
    assert sorted(p.name for p in (root / "model").iterdir()) == ["model.joblib", "model_card.json"]
    assert (root / "model" / "model.joblib").read_bytes() == (artifact / "model.joblib").read_bytes()
    assert sorted(p.name for p in (root / "wheels").iterdir()) == sorted(w.name for w in wheels)
    lock = (root / "requirements.lock").read_text().split()
    assert lock == context.lock
    assert "threadpoolctl==3.8.0" in lock
    for pin in pinned_requirements(library_versions()):
        assert pin in lock
    assert not list(root.rglob("__pycache__"))


def test_context_refuses_wheels_that_differ_from_the_card(artifact, tmp_path):
    versions = {**library_versions(), "numpy": "1.0.0"}
    with pytest.raises(ModelArtifactError, match=r"wheels do not satisfy numpy==.* \(have numpy==1.0.0\)"):
        assemble_build_context(DEFAULT_SERVICE_DIR, artifact, tmp_path / "ctx", _fake_wheels(tmp_path / "w", versions))


def test_card_without_a_training_library_is_rejected_naming_file_and_library(artifact):
    card = json.loads((artifact / "model_card.json").read_text())
    del card["library_versions"]["scipy"]
    (artifact / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelArtifactError, match=r"model_card.json: library_versions lacks scipy"):
        read_model_card(artifact)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("task", "regression", "field 'task' is 'regression'; allowed: anomaly, classification"),
        ("feature_schema", [{"name": "x", "type": "decimal"}], "feature_schema[0] ('x') has type 'decimal'"),
        ("library_versions", {**library_versions(), "numpy": "latest"}, "'numpy'] = 'latest' is not a PEP 440"),
    ],
)
def test_card_field_errors_name_the_field_and_what_is_allowed(artifact, field, value, message):
    card = json.loads((artifact / "model_card.json").read_text())
    card[field] = value
    (artifact / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelArtifactError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        read_model_card(artifact)


def test_missing_artifact_names_the_path(tmp_path):
    with pytest.raises(ModelArtifactError, match=r"nowhere/model_card.json: not found"):
        read_model_card(tmp_path / "nowhere")


def test_image_reference_and_labels_follow_the_contract(artifact):
    card = read_model_card(artifact)
    assert image_reference("127.0.0.1:5000/", "pumps", "v3") == "127.0.0.1:5000/lepton/model-pumps:v3"
    labels = image_labels(card, "python:3.11-slim", created=datetime(2026, 1, 2, tzinfo=UTC))
    assert labels["org.lepton.model.version"] == "v3"
    assert labels["org.lepton.model.name"] == "pumps"
    assert labels["org.opencontainers.image.created"] == "2026-01-02T00:00:00+00:00"
    assert json.loads(labels["org.lepton.model.library-versions"]) == library_versions()
    with pytest.raises(ModelArtifactError, match="not a valid image tag"):
        image_reference("r:5000", "pumps", "v3+local")
    with pytest.raises(ModelArtifactError, match="cannot form an image name"):
        image_reference("r:5000", "Pumps", "v3")


def test_wheel_target_lists_every_manylinux_glibc_up_to_the_base_image():
    args = WheelTarget(python_version="3.11", glibc_max_minor=36).pip_args()
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in platforms
    assert "manylinux2014_x86_64" in platforms
    assert args[args.index("--abi") + 1] == "cp311"
