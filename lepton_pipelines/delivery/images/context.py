"""Assemble a model-service build context, and the names and labels of the image it becomes.

Pure file and string logic (no Docker, no Dagster, no network) so the exact content of what
goes into an image reads and tests on its own. The layout produced here is the one
``deployments/model-service/Dockerfile`` expects:

    Dockerfile  app/  model/{model.joblib,model_card.json}  requirements.lock  wheels/*.whl
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from upath import UPath

MODEL_FILES = ("model.joblib", "model_card.json")
# The libraries a pickled scikit-learn estimator depends on: a version mismatch in any of them
# can change scores silently or fail to unpickle, so the card must name all of them.
REQUIRED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "pandas")
TASKS = ("anomaly", "classification")
SCORE_METHODS = ("predict_proba", "decision_function", "score_samples", "predict")
FEATURE_TYPES = ("float", "integer", "string", "boolean")
LABEL_PREFIX = "org.lepton.model"

# Docker reference grammar (distribution/reference): one path component, and a tag.
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ModelArtifactError(ValueError):
    """The model artifact or its card is unusable; the message names the file and field."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str
    score_method: str
    feature_schema: list[dict[str, Any]]
    library_versions: dict[str, str]
    sample_input: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""  # set by the model registry when the version was registered


def parse_model_card(raw: Any, source: str) -> ModelCard:
    """Validate a model card dict; ``source`` (a path) is named in every error."""
    if not isinstance(raw, dict):
        raise ModelArtifactError(f"{source}: must be a JSON object")

    def need(key: str, kind: type, allowed: tuple[str, ...] | None = None) -> Any:
        if key not in raw:
            raise ModelArtifactError(f"{source}: missing field {key!r}")
        value = raw[key]
        if not isinstance(value, kind):
            raise ModelArtifactError(f"{source}: field {key!r} must be a {kind.__name__}, got {value!r}")
        if allowed and value not in allowed:
            raise ModelArtifactError(f"{source}: field {key!r} is {value!r}; allowed: {', '.join(allowed)}")
        return value

    schema = need("feature_schema", list)
    if not schema:
        raise ModelArtifactError(f"{source}: field 'feature_schema' is empty")
    for index, entry in enumerate(schema):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry.get("name"):
            raise ModelArtifactError(f"{source}: feature_schema[{index}] needs a non-empty string 'name'")
        if entry.get("type") not in FEATURE_TYPES:
            raise ModelArtifactError(
                f"{source}: feature_schema[{index}] ({entry['name']!r}) has type {entry.get('type')!r};"
                f" allowed: {', '.join(FEATURE_TYPES)}"
            )
    versions = need("library_versions", dict)
    missing = [lib for lib in REQUIRED_LIBRARIES if lib not in {canonicalize_name(k) for k in versions}]
    if missing:
        raise ModelArtifactError(
            f"{source}: library_versions lacks {', '.join(missing)}; the image pins exactly the training"
            f" versions of {', '.join(REQUIRED_LIBRARIES)}"
        )
    for library, version in versions.items():
        try:
            Version(str(version))
        except InvalidVersion:
            raise ModelArtifactError(
                f"{source}: library_versions[{library!r}] = {version!r} is not a PEP 440 version"
            ) from None
    sample = raw.get("sample_input") or []
    if not isinstance(sample, list) or not all(isinstance(row, dict) for row in sample):
        raise ModelArtifactError(f"{source}: field 'sample_input' must be a list of row objects")
    return ModelCard(
        name=need("name", str),
        version=need("version", str),
        task=need("task", str, TASKS),
        score_method=need("score_method", str, SCORE_METHODS),
        feature_schema=schema,
        library_versions={str(k): str(v) for k, v in versions.items()},
        sample_input=sample,
        metrics=raw.get("metrics") or {},
        created_at=str(raw.get("created_at") or ""),
    )


def read_model_card(artifact_dir: Path | UPath) -> ModelCard:
    """Read and validate ``model_card.json`` of an artifact directory (local or s3://)."""
    path = artifact_dir / "model_card.json"
    if not path.exists():
        raise ModelArtifactError(f"{path}: not found; a model artifact needs {' and '.join(MODEL_FILES)}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(f"{path}: not valid JSON: {exc}") from None
    return parse_model_card(raw, str(path))


def pinned_requirements(library_versions: dict[str, str]) -> list[str]:
    """``name==version`` for every library of the card, sorted: exact training versions, no ranges."""
    return sorted(f"{canonicalize_name(name)}=={version}" for name, version in library_versions.items())


def lock_from_wheels(wheel_files: Iterable[Path]) -> list[str]:
    """The full lock (card pins + resolved dependencies) as ``name==version`` from wheel filenames."""
    pins = {}
    for wheel in wheel_files:
        try:
            name, version, _build, _tags = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename as exc:
            raise ModelArtifactError(f"{wheel}: not a wheel file name: {exc}") from None
        pins[str(name)] = f"{name}=={version}"
    return [pins[name] for name in sorted(pins)]


def validate_image_name_parts(model_name: str, model_version: str) -> None:
    if not _PATH_COMPONENT.match(f"model-{model_name}"):
        raise ModelArtifactError(
            f"model name {model_name!r} cannot form an image name 'lepton/model-{model_name}': use lower-case"
            " letters, digits and single separators (. _ -)"
        )
    if not _TAG.match(model_version):
        raise ModelArtifactError(
            f"model version {model_version!r} is not a valid image tag: up to 128 of A-Z a-z 0-9 _ . -,"
            " not starting with . or -"
        )


def image_repository(registry: str, model_name: str) -> str:
    """``<registry>/lepton/model-<model_name>`` (fixed contract)."""
    return f"{registry.rstrip('/')}/lepton/model-{model_name}"


def image_reference(registry: str, model_name: str, model_version: str) -> str:
    validate_image_name_parts(model_name, model_version)
    return f"{image_repository(registry, model_name)}:{model_version}"


def image_labels(card: ModelCard, base_image: str, created: datetime | None = None) -> dict[str, str]:
    """Contract label ``org.lepton.model.version`` plus the model's identity and OCI annotations.

    The creation time is the version's registration time (from the card) when known, so that a
    rebuild of an unchanged version with the layer cache reproduces the very same image id — which
    the registry then recognises as already pushed instead of a conflicting rebuild.
    """
    if created is None and card.created_at:
        try:
            created = datetime.fromisoformat(card.created_at)
        except ValueError:
            created = None
    created = created or datetime.now(UTC)
    return {
        f"{LABEL_PREFIX}.name": card.name,
        f"{LABEL_PREFIX}.version": card.version,
        f"{LABEL_PREFIX}.task": card.task,
        f"{LABEL_PREFIX}.score-method": card.score_method,
        f"{LABEL_PREFIX}.library-versions": json.dumps(dict(sorted(card.library_versions.items()))),
        "org.opencontainers.image.title": f"lepton model-service {card.name}",
        "org.opencontainers.image.description": f"{card.task} model {card.name} version {card.version}"
        " served on :8080 (/health /ready /predict /metrics)",
        "org.opencontainers.image.version": card.version,
        "org.opencontainers.image.created": created.isoformat(timespec="seconds"),
        "org.opencontainers.image.vendor": "Lepton Pipelines",
        "org.opencontainers.image.base.name": base_image,
    }


@dataclass(frozen=True)
class BuildContext:
    path: Path
    card: ModelCard
    lock: list[str]


def assemble_build_context(
    service_dir: Path,
    artifact_dir: Path | UPath,
    dest: Path,
    wheel_files: Iterable[Path],
) -> BuildContext:
    """Lay out ``dest`` as the Docker build context: service files, model files, lock and wheels.

    Only the two contract files of the artifact are copied, so whatever else a training run
    left beside them (samples, plots) never ends up in an image.
    """
    card = read_model_card(artifact_dir)
    for required in ("Dockerfile", "app"):
        if not (service_dir / required).exists():
            raise FileNotFoundError(f"{service_dir / required}: model-service sources not found")
    wheels = sorted(wheel_files)
    lock = lock_from_wheels(wheels)
    locked = {line.split("==")[0]: line for line in lock}
    for pin in pinned_requirements(card.library_versions):
        if locked.get(pin.split("==")[0]) != pin:
            raise ModelArtifactError(
                f"wheels do not satisfy {pin} from {artifact_dir}/model_card.json (have"
                f" {locked.get(pin.split('==')[0], 'none')})"
            )

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(service_dir / "Dockerfile", dest / "Dockerfile")
    shutil.copytree(
        service_dir / "app", dest / "app", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    model_dest = dest / "model"
    model_dest.mkdir(exist_ok=True)
    for name in MODEL_FILES:
        source = artifact_dir / name
        if not source.exists():
            raise ModelArtifactError(f"{source}: not found; a model artifact needs {' and '.join(MODEL_FILES)}")
        (model_dest / name).write_bytes(source.read_bytes())
    wheels_dest = dest / "wheels"
    wheels_dest.mkdir(exist_ok=True)
    for wheel in wheels:
        target = wheels_dest / wheel.name
        if not target.exists():
            shutil.copy2(wheel, target)
    (dest / "requirements.lock").write_text("\n".join(lock) + "\n", encoding="utf-8")
    (dest / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    return BuildContext(path=dest, card=card, lock=lock)
