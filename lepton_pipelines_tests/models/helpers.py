"""Register model versions in a test lake the way the training asset does (write, decide, commit)."""

from __future__ import annotations

from lepton_pipelines.lake.store import Lake
from lepton_pipelines.models.config import load_models, model_by_name
from lepton_pipelines.models.registry import ModelRegistry, build_card, decide_promotion
from lepton_pipelines.models.training import library_versions


def register(lake: Lake, model: str, artifact: bytes, roc_auc: float) -> str:
    """Register a version with the given ``roc_auc`` (other metrics fixed and passing); returns the
    version. Promotion follows the model's declared rule, so a lower ``roc_auc`` stays a candidate."""
    spec = model_by_name(model, load_models())
    metrics = {"roc_auc": roc_auc, "average_precision": roc_auc / 2, "anomaly_rate": 0.02, "anomaly_rate_shift": 0.0}
    sample = [{f.name: (1.0 if f.type == "float" else "x") for f in spec.features}]
    card = build_card(
        spec, metrics, sample, library_versions(), {"assets": [], "partitions": [], "quality": {}, "rows": 0}
    )
    registry = ModelRegistry(lake.path("models"), model)
    registered = registry.write_version(artifact, card)
    production = registry.alias("production")
    production_metrics = registry.read_card(production)["metrics"] if production else None
    registry.commit(
        registered, decide_promotion(registered.version, metrics, production, production_metrics, spec.promotion)
    )
    return registered.version
