"""The model registry in the lake: versions, aliases, and the promotion rule that moves them.

Layout (contract; the image builder reads it)::

    <lake>/models/<name>/registry.json              index: versions, aliases, decisions log
    <lake>/models/<name>/<version>/model.joblib     fitted scikit-learn pipeline
    <lake>/models/<name>/<version>/model_card.json  metrics, training data + quality, schema, libraries

A version id is the first 12 hex digits of sha256 over the artifact bytes and the card without its
timestamps, so retraining on identical data yields the same version and registers nothing new.
Version files are published before the index names them, and the index is replaced in one atomic
write, so a reader (the sensor, the image builder) never sees a version whose files are incomplete.
``versions`` in the index only ever grows (append-only), which the delivery sensor relies on.

No Dagster imports: the training asset, the delivery sensor and tests all use these functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from upath import UPath

from lepton_pipelines.lake.atomic import write_atomic
from lepton_pipelines.models.config import ModelSpec, PromotionSpec

MODELS_ROOT = "models"
INDEX_FILE = "registry.json"
ARTIFACT_FILE = "model.joblib"
CARD_FILE = "model_card.json"
ALIASES = ("candidate", "production")
VERSION_DIGITS = 12
# Card fields that change on every run without changing the model; excluded from the version hash.
VOLATILE_CARD_FIELDS = ("version", "created_at")


class RegistryError(ValueError):
    """The registry holds no such model/version/alias, or its index is unreadable; names the path."""


def content_version(artifact: bytes, card: dict[str, Any]) -> str:
    stable = {k: v for k, v in card.items() if k not in VOLATILE_CARD_FIELDS}
    digest = hashlib.sha256(artifact)
    digest.update(json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str).encode())
    return digest.hexdigest()[:VERSION_DIGITS]


def build_card(
    spec: ModelSpec,
    metrics: dict[str, float],
    sample_input: list[dict[str, Any]],
    library_versions: dict[str, str],
    training: dict[str, Any],
) -> dict[str, Any]:
    """The model card, minus ``version`` and ``created_at`` (the registry adds them)."""
    return {
        "name": spec.name,
        "description": spec.description,
        "task": spec.task,
        "score_method": spec.score_method,
        "estimator": spec.estimator,
        "feature_schema": [{"name": f.name, "type": f.type} for f in spec.features],
        "label": spec.label,
        "library_versions": dict(library_versions),
        "metrics": dict(metrics),
        "sample_input": list(sample_input),
        "training": dict(training),
        "params": dict(spec.params),
    }


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    direction: str
    candidate: float | None
    production: float | None
    verdict: str  # "better", "equal", "within tolerance", "worse", "not compared"


@dataclass(frozen=True)
class PromotionDecision:
    candidate: str
    production_before: str | None
    promote: bool
    reason: str
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float] | None
    production_metrics_basis: str = ""  # where the champion's numbers come from
    comparisons: list[MetricComparison] = field(default_factory=list)

    @property
    def production_after(self) -> str | None:
        return self.candidate if self.promote else self.production_before

    def to_record(self, decided_at: datetime) -> dict[str, Any]:
        return {"decided_at": decided_at.isoformat(timespec="seconds"), **asdict(self)}


def decide_promotion(
    candidate: str,
    candidate_metrics: dict[str, float],
    production: str | None,
    production_metrics: dict[str, float] | None,
    policy: PromotionSpec,
    production_metrics_basis: str = "",
) -> PromotionDecision:
    """Champion/challenger: promote only if every threshold holds and no compared metric is worse
    than production's by more than ``policy.tolerance``. The reason says which rule decided."""

    def decision(promote: bool, reason: str, comparisons: list[MetricComparison] | None = None) -> PromotionDecision:
        return PromotionDecision(
            candidate=candidate,
            production_before=production,
            promote=promote,
            reason=reason,
            candidate_metrics=dict(candidate_metrics),
            production_metrics=dict(production_metrics) if production_metrics is not None else None,
            production_metrics_basis=production_metrics_basis,
            comparisons=comparisons or [],
        )

    failures = threshold_failures(candidate_metrics, policy)
    if failures:
        return decision(False, f"candidate {candidate} fails the promotion thresholds: {'; '.join(failures)}")
    if production is None:
        return decision(True, f"no production version yet; candidate {candidate} meets every threshold")
    if production == candidate:
        return decision(False, f"candidate {candidate} is already the production version; nothing to change")

    comparisons = [
        _compare(
            metric, direction, candidate_metrics.get(metric), (production_metrics or {}).get(metric), policy.tolerance
        )
        for metric, direction in policy.compare.items()
    ]
    worse = [c for c in comparisons if c.verdict == "worse"]
    basis = f" ({production_metrics_basis})" if production_metrics_basis else ""
    if worse:
        detail = "; ".join(
            f"{c.metric} {_fmt(c.candidate)} vs {_fmt(c.production)} ({c.direction.replace('_', ' ')})" for c in worse
        )
        return decision(
            False, f"candidate {candidate} is worse than production {production}{basis}: {detail}", comparisons
        )
    compared = [c.metric for c in comparisons if c.verdict != "not compared"]
    on = f" on {', '.join(compared)}" if compared else " (no comparable metric)"
    return decision(
        True,
        f"candidate {candidate} meets every threshold and is not worse than production {production}{basis}{on}",
        comparisons,
    )


def threshold_failures(metrics: dict[str, float], policy: PromotionSpec) -> list[str]:
    failures = []
    for metric, bounds in policy.thresholds.items():
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} was not measured")
        elif bounds.min is not None and value < bounds.min:
            failures.append(f"{metric} {_fmt(value)} is below the minimum {_fmt(bounds.min)}")
        elif bounds.max is not None and value > bounds.max:
            failures.append(f"{metric} {_fmt(value)} is above the maximum {_fmt(bounds.max)}")
    return failures


def _compare(
    metric: str, direction: str, candidate: float | None, production: float | None, tolerance: float
) -> MetricComparison:
    if candidate is None and production is None:
        verdict = "not compared"  # not measurable on this data (e.g. no ground-truth labels)
    elif candidate is None:
        verdict = "worse"  # production proved something the candidate cannot
    elif production is None:
        verdict = "not compared"
    else:
        gain = candidate - production if direction == "higher_is_better" else production - candidate
        verdict = (
            "better" if gain > 0 else "equal" if gain == 0 else "within tolerance" if -gain <= tolerance else "worse"
        )
    return MetricComparison(metric, direction, candidate, production, verdict)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    card: dict[str, Any]
    created: bool  # False when identical content was already registered


class ModelRegistry:
    """One model's folder in the lake. ``models_root`` is ``<lake>/models``."""

    def __init__(self, models_root: UPath, model_name: str):
        self.model_name = model_name
        self.folder = models_root / model_name

    @property
    def index_path(self) -> UPath:
        return self.folder / INDEX_FILE

    def version_dir(self, version: str) -> UPath:
        return self.folder / version

    def index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"name": self.model_name, "versions": [], "aliases": {}, "decisions": []}
        try:
            return json.loads(self.index_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RegistryError(f"{self.index_path}: not valid JSON ({error}); restore it from a lake backup") from None

    def versions(self) -> list[str]:
        return [entry["version"] for entry in self.index()["versions"]]

    def alias(self, alias: str) -> str | None:
        return self.index()["aliases"].get(alias)

    def read_card(self, version: str) -> dict[str, Any]:
        path = self.version_dir(version) / CARD_FILE
        if not path.exists():
            raise RegistryError(
                f"{path}: model {self.model_name!r} has no version {version!r}; "
                f"registered: {', '.join(self.versions()) or 'none'}"
            )
        return json.loads(path.read_text(encoding="utf-8"))

    def read_artifact(self, version: str) -> bytes:
        path = self.version_dir(version) / ARTIFACT_FILE
        if not path.exists():
            raise RegistryError(f"{path}: artifact of model {self.model_name!r} version {version!r} is missing")
        return path.read_bytes()

    def write_version(self, artifact: bytes, card: dict[str, Any]) -> RegisteredVersion:
        """Publish the artifact and card under their content-derived version (index untouched).

        Identical content is not rewritten: the first registration's files and timestamp stay.
        The card is written last, so its presence marks a complete version folder.
        """
        version = content_version(artifact, card)
        folder = self.version_dir(version)
        if (folder / CARD_FILE).exists():
            return RegisteredVersion(version, self.read_card(version), created=False)
        full_card = {
            **card,
            "name": self.model_name,
            "version": version,
            "created_at": _now().isoformat(timespec="seconds"),
        }
        write_atomic(folder / ARTIFACT_FILE, artifact, fsync=True)
        write_atomic(
            folder / CARD_FILE, json.dumps(full_card, indent=2, sort_keys=True, default=str).encode(), fsync=True
        )
        return RegisteredVersion(version, full_card, created=True)

    def commit(self, registered: RegisteredVersion, decision: PromotionDecision) -> dict[str, Any]:
        """One atomic index update: list the version, point ``candidate`` at it, move ``production``
        if the decision says so, and log the decision."""
        if decision.candidate != registered.version:
            raise RegistryError(f"decision is about {decision.candidate}, not the registered {registered.version}")
        index = self.index()
        now = _now()
        if registered.version not in {entry["version"] for entry in index["versions"]}:
            index["versions"].append(
                {
                    "version": registered.version,
                    "registered_at": now.isoformat(timespec="seconds"),
                    "metrics": registered.card.get("metrics", {}),
                }
            )
        index["aliases"]["candidate"] = registered.version
        if decision.promote:
            index["aliases"]["production"] = registered.version
        index["decisions"].append(decision.to_record(now))
        self._write_index(index)
        return index

    def set_alias(self, alias: str, version: str, reason: str) -> dict[str, Any]:
        """Point an alias at a registered version by hand (e.g. a rollback), logged like a decision."""
        if alias not in ALIASES:
            raise RegistryError(f"alias {alias!r} is unknown; allowed: {', '.join(ALIASES)}")
        index = self.index()
        if version not in {entry["version"] for entry in index["versions"]}:
            raise RegistryError(
                f"{self.index_path}: model {self.model_name!r} has no version {version!r}; "
                f"registered: {', '.join(e['version'] for e in index['versions']) or 'none'}"
            )
        before = index["aliases"].get(alias)
        index["aliases"][alias] = version
        index["decisions"].append(
            {
                "decided_at": _now().isoformat(timespec="seconds"),
                "alias": alias,
                "from": before,
                "to": version,
                "reason": reason,
            }
        )
        self._write_index(index)
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        write_atomic(self.index_path, json.dumps(index, indent=2, default=str).encode(), fsync=True)


def registered_model_names(models_root: UPath) -> list[str]:
    """Models under ``<lake>/models`` that have an index (a model mid-first-registration has none yet)."""
    if not models_root.exists():
        return []
    return sorted(folder.name for folder in models_root.iterdir() if (folder / INDEX_FILE).exists())
