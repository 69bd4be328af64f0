"""The training factory: one asset ``["models", <name>]`` per model declared in ``models.yaml``.

Each materialization reads the latest governed partitions straight from the lake, trains and
scores on a held-out split (``training.py``), publishes a content-addressed version and applies
the champion/challenger rule (``registry.py``). The model lives in the registry, not behind an IO
manager, so the asset returns a ``MaterializeResult`` whose data version *is* the model version.
The downstream image and deployment assets are declared here too, so the UI shows
governed data → model → image → deployment as one lineage.
"""

from typing import Any

import dagster as dg
import pandas as pd

from lepton_pipelines.governance.quality_store import read_results
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.models.config import ModelSpec
from lepton_pipelines.models.registry import (
    MODELS_ROOT,
    ModelRegistry,
    PromotionDecision,
    build_card,
    decide_promotion,
    threshold_failures,
)
from lepton_pipelines.models.training import (
    TrainedModel,
    TrainingDataError,
    deserialize,
    evaluate,
    library_versions,
    serialize,
    train_model,
)

GROUP = "models"
THRESHOLD_CHECK = "meets_promotion_thresholds"


def model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["models", name])


def image_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["models", name, "image"])


def deployment_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["models", name, "deployment"])


def governed_key(source: str) -> dg.AssetKey:
    return dg.AssetKey([source, "governed"])


def load_training_data(lake: Lake, spec: ModelSpec) -> tuple[pd.DataFrame, list[str]]:
    """The latest ``lookback_partitions`` governed partitions of the model's source, concatenated."""
    partitions = lake.partitions("governed", spec.source)[-spec.training.lookback_partitions :]
    if not partitions:
        raise TrainingDataError(
            f"model {spec.name!r}: no governed partitions at {lake.table_dir('governed', spec.source)}; "
            f"materialize {'/'.join(governed_key(spec.source).path)} first"
        )
    frames = [lake.read_table("governed", spec.source, partition) for partition in partitions]
    return pd.concat(frames, ignore_index=True), partitions


def quality_of(lake: Lake, source: str, partitions: list[str]) -> dict[str, Any]:
    """Per training partition: how many checks ran and which failed (from the governance history).

    Timestamps are left out on purpose: the card feeds the content-derived version, and
    re-validating unchanged data must not mint a new model version.
    """
    summary: dict[str, Any] = {}
    for partition in partitions:
        results = read_results(lake, source, partition)
        if results is None:
            summary[partition] = {"recorded": False}
            continue
        failed = results[~results["passed"].astype(bool)]
        summary[partition] = {
            "recorded": True,
            "checks": int(len(results)),
            "passed": int(len(results) - len(failed)),
            "failed": sorted(
                f"{stage}:{name}" for stage, name in zip(failed["stage"], failed["check_name"], strict=True)
            ),
            "blocking_failed": sorted(
                f"{stage}:{name}"
                for stage, name, blocking in zip(failed["stage"], failed["check_name"], failed["blocking"], strict=True)
                if bool(blocking)
            ),
        }
    return summary


def champion_metrics(
    registry: ModelRegistry, spec: ModelSpec, trained: TrainedModel, production: str
) -> tuple[dict[str, float], str]:
    """Production's metrics on the *candidate's* held-out rows, so both are judged on the same data.

    Falls back to the numbers recorded at production's own training when it cannot be re-scored
    (its feature schema differs, or its artifact no longer loads), and says so in the basis.
    """
    card = registry.read_card(production)
    recorded = dict(card.get("metrics", {}))
    same_schema = card.get("feature_schema") == [{"name": f.name, "type": f.type} for f in spec.features]
    if not same_schema:
        return recorded, "recorded at its own training; its feature schema differs from the candidate's"
    try:
        estimator = deserialize(registry.read_artifact(production))
        metrics = evaluate(spec, estimator, trained.held_out, recorded.get("training_anomaly_rate"))
    except Exception as error:  # noqa: BLE001 — any failure to re-score falls back, and the reason is recorded
        return recorded, f"recorded at its own training; re-scoring failed: {type(error).__name__}: {error}"
    return metrics, "re-scored on the candidate's held-out rows"


def _metadata(
    spec: ModelSpec,
    version: str,
    created: bool,
    decision: PromotionDecision,
    index: dict[str, Any],
    partitions: list[str],
    registry: ModelRegistry,
) -> dict[str, Any]:
    metrics = {
        f"metric/{name}": dg.MetadataValue.float(float(value)) for name, value in decision.candidate_metrics.items()
    }
    return {
        "model_version": version,
        "newly_registered": created,
        "candidate": index["aliases"].get("candidate"),
        "production": index["aliases"].get("production") or "none",
        "promoted": decision.promote,
        "promotion_reason": decision.reason,
        "champion_metrics": dg.MetadataValue.json(
            {"basis": decision.production_metrics_basis, "metrics": decision.production_metrics}
        ),
        "training_partitions": dg.MetadataValue.json(partitions),
        "model_card": dg.MetadataValue.path(str(registry.version_dir(version) / "model_card.json")),
        "estimator": spec.estimator,
        **metrics,
    }


def build_model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        key_prefix=["models"],
        group_name=GROUP,
        deps=[governed_key(spec.source)],
        description=f"{spec.description.strip()}\n\nTrains `{spec.estimator}` ({spec.task}) on the latest "
        f"{spec.training.lookback_partitions} governed `{spec.source}` partitions and registers it in "
        f"`<lake>/models/{spec.name}/`.",
        kinds={"scikit-learn"},
        owners=[spec.owner] if spec.owner else None,
        tags={"lepton/task": spec.task},
        check_specs=[
            dg.AssetCheckSpec(
                THRESHOLD_CHECK,
                asset=model_key(spec.name),
                description="The trained version meets the promotion thresholds declared in models.yaml.",
            )
        ],
    )
    def train(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        try:
            frame, partitions = load_training_data(store, spec)
            trained = train_model(spec, frame)
        except TrainingDataError as error:
            raise dg.Failure(description=str(error)) from None
        training_info = {
            "assets": ["/".join(governed_key(spec.source).path)],
            "partitions": partitions,
            "quality": quality_of(store, spec.source, partitions),
            "rows": len(frame),
            "train_rows": trained.train_rows,
            "test_rows": trained.test_rows,
            "split": spec.training.split.model_dump(),
            "seed": spec.training.seed,
        }
        card = build_card(spec, trained.metrics, trained.sample_input, library_versions(), training_info)
        registry = ModelRegistry(store.path(MODELS_ROOT), spec.name)
        registered = registry.write_version(serialize(trained.estimator), card)
        production = registry.alias("production")
        champion, basis = (
            champion_metrics(registry, spec, trained, production)
            if production and production != registered.version
            else (None, "")
        )
        decision = decide_promotion(
            registered.version, trained.metrics, production, champion, spec.promotion, production_metrics_basis=basis
        )
        index = registry.commit(registered, decision)
        context.log.info(f"{spec.name} {registered.version}: {decision.reason}")
        failures = threshold_failures(trained.metrics, spec.promotion)
        return dg.MaterializeResult(
            metadata=_metadata(spec, registered.version, registered.created, decision, index, partitions, registry),
            data_version=dg.DataVersion(registered.version),
            check_results=[
                dg.AssetCheckResult(
                    check_name=THRESHOLD_CHECK,
                    passed=not failures,
                    severity=dg.AssetCheckSeverity.WARN,
                    description="; ".join(failures) or "every threshold met",
                    metadata={"thresholds": dg.MetadataValue.json(spec.promotion.model_dump()["thresholds"])},
                )
            ],
        )

    return train


def delivery_asset_specs(spec: ModelSpec) -> list[dg.AssetSpec]:
    """The image and deployment are materialized by jobs (build, deploy), not by asset runs;
    declaring them lets those jobs' materializations land on these keys and the graph show the chain."""
    return [
        dg.AssetSpec(
            image_key(spec.name),
            deps=[model_key(spec.name)],
            group_name=GROUP,
            description=f"Model-service image `<registry>/lepton/model-{spec.name}:<version>`, built, pushed and "
            "smoke-tested by the `build_model_image` job for each new registered version.",
            kinds={"docker"},
        ),
        dg.AssetSpec(
            deployment_key(spec.name),
            deps=[image_key(spec.name)],
            group_name=GROUP,
            description=f"The serving deployment of `{spec.name}` (target `{spec.deploy.target}` by default), "
            "rolled out by the `deploy_model` job when an image of the production version is built.",
            kinds={"kubernetes" if spec.deploy.target == "kubernetes" else "docker"},
        ),
    ]
