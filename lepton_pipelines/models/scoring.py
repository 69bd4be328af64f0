"""Batch scoring: the champion model applied to a day's governed rows, stored with the model version.

``models/<name>/scores`` (daily) reads that day's governed partition of the model's source, loads the
version the registry names *champion* and writes one row per input row to
``<lake>/models/<name>/scores/date=YYYY-MM-DD/data.parquet`` — beside the registry, so a score can always
be traced to the exact artifact that produced it.

The champion is the registry's ``production`` alias (the champion/challenger rule in ``registry.py``
moves it); a registry that names an explicit ``champion`` alias wins. Promoting a new champion does
**not** re-score old partitions by itself: scores are evidence of what the model said at the time,
and re-scoring a year of data is a decision. Which days were scored by which version is one query
(``lepton-lake sql "select date, model_version, count(*) from scores.transaction_risk group by all"``)
and the ``scored_by_champion`` check (WARN) records it at each run; re-scoring is a backfill of this
asset over the chosen partitions (UI: select the partitions → Materialize, one run per day; or
``dagster asset materialize --select models/transaction_risk/scores --partition D`` per day), then of
the marts that read them. Scoring with a given version (to reproduce an old run) is the
``model_version`` run config.

scikit-learn and joblib are imported inside the functions: loading the code location stays fast.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import read_parquet_dir
from lepton_pipelines.models.config import ModelSpec
from lepton_pipelines.models.registry import MODELS_ROOT, ModelRegistry, RegistryError

CHAMPION_ALIASES = ("champion", "production")  # first one the registry names wins
SCORES_FOLDER = "scores"
DEFAULT_HIGH_RISK_THRESHOLD = 0.5
# Columns of the scored rows kept beside the score, so consumers need not join back for the basics.
PASS_THROUGH = ("txn_id", "customer_id", "event_ts", "amount", "currency")


class ScoringError(ValueError):
    """Scoring cannot run; the message names the model, version or column and what to do."""


def champion_version(registry: ModelRegistry) -> tuple[str, str]:
    """``(version, alias)`` of the champion; a clear error when the model has none yet."""
    aliases = registry.index()["aliases"]
    for alias in CHAMPION_ALIASES:
        if aliases.get(alias):
            return aliases[alias], alias
    raise ScoringError(
        f"model {registry.model_name!r} has no champion at {registry.index_path} (aliases: "
        f"{', '.join(f'{k}={v}' for k, v in aliases.items()) or 'none'}); materialize models/{registry.model_name} "
        "until a version is promoted, or pass model_version"
    )


def load_estimator(registry: ModelRegistry, version: str) -> tuple[Any, dict[str, Any]]:
    from lepton_pipelines.models.training import deserialize  # scikit-learn: only when scoring

    card = registry.read_card(version)
    return deserialize(registry.read_artifact(version)), card


def feature_frame(card: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """The model's features from ``frame``, typed as the *version's* card declares (not today's YAML:
    an old version keeps scoring with the schema it was trained on)."""
    schema = card.get("feature_schema") or []
    missing = [f["name"] for f in schema if f["name"] not in frame.columns]
    if missing:
        raise ScoringError(
            f"model {card.get('name')!r} version {card.get('version')!r} needs column(s) {', '.join(missing)}; "
            f"the input has {', '.join(map(str, frame.columns))}"
        )
    features = pd.DataFrame(index=frame.index)
    for feature in schema:
        column = frame[feature["name"]]
        if feature["type"] in ("float", "integer"):
            features[feature["name"]] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            features[feature["name"]] = column.astype("object").where(column.notna(), None)
    return features


def risk_scores(estimator: Any, card: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """A higher-is-riskier score per row: P(positive class) for classifiers, ``-decision_function``
    (abnormality) for anomaly models."""
    if len(features) == 0:
        return np.empty(0, dtype="float64")
    method = card.get("score_method", "predict_proba")
    if method == "predict_proba":
        positive = list(estimator.classes_).index(True)
        return estimator.predict_proba(features)[:, positive].astype("float64")
    if method == "decision_function":
        return (-estimator.decision_function(features)).astype("float64")
    if method == "score_samples":
        return (-estimator.score_samples(features)).astype("float64")
    return np.asarray(estimator.predict(features), dtype="float64")


@dataclass(frozen=True)
class ScoredPartition:
    frame: pd.DataFrame
    model_version: str
    alias: str | None  # the alias the version was picked by, None when given explicitly
    threshold: float


def score_partition(
    registry: ModelRegistry,
    governed: pd.DataFrame,
    version: str | None = None,
    threshold: float = DEFAULT_HIGH_RISK_THRESHOLD,
    scored_at: datetime | None = None,
) -> ScoredPartition:
    """Score every governed row with ``version`` (default: the champion). One output row per input row."""
    alias = None
    if version is None:
        version, alias = champion_version(registry)
    try:
        estimator, card = load_estimator(registry, version)
    except RegistryError as error:
        raise ScoringError(str(error)) from None
    scores = risk_scores(estimator, card, feature_frame(card, governed))
    out = pd.DataFrame({c: governed[c].to_numpy() for c in PASS_THROUGH if c in governed.columns})
    out["risk_score"] = scores
    out["is_high_risk"] = scores >= threshold
    out["high_risk_threshold"] = float(threshold)
    out["model_name"] = registry.model_name
    out["model_version"] = version
    out["scored_at"] = pd.Timestamp(scored_at or datetime.now(UTC))
    return ScoredPartition(out, version, alias, float(threshold))


def scores_metadata(scored: ScoredPartition) -> dict[str, float | int | str]:
    frame = scored.frame
    high = frame["is_high_risk"]
    meta: dict[str, float | int | str] = {
        "model_version": scored.model_version,
        "picked_by": f"alias {scored.alias}" if scored.alias else "run config model_version",
        "scored_rows": int(len(frame)),
        "high_risk_count": int(high.sum()),
        "high_risk_share": float(high.mean()) if len(frame) else 0.0,
        "mean_risk_score": float(frame["risk_score"].mean()) if len(frame) else 0.0,
    }
    if "amount" in frame.columns:
        meta["high_risk_amount"] = float(pd.to_numeric(frame.loc[high, "amount"], errors="coerce").sum())
    return meta


def registry_for(lake, spec: ModelSpec) -> ModelRegistry:
    return ModelRegistry(lake.path(MODELS_ROOT), spec.name)


# -- Dagster wiring (thin) -------------------------------------------------------------------------
def scores_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["models", model, SCORES_FOLDER])


class ScoringConfig(dg.Config):
    model_version: str | None = None  # score with this registered version instead of the champion
    high_risk_threshold: float = DEFAULT_HIGH_RISK_THRESHOLD


def build_scores_asset(
    spec: ModelSpec, partitions_def: dg.PartitionsDefinition, io_manager_key: str
) -> dg.AssetsDefinition:
    key = scores_key(spec.name)
    governed = dg.AssetKey([spec.source, "governed"])

    @dg.asset(
        key=key,
        group_name="models",
        partitions_def=partitions_def,
        deps=[dg.AssetDep(governed), dg.AssetDep(dg.AssetKey(["models", spec.name]))],
        io_manager_key=io_manager_key,
        kinds={"scikit-learn", "parquet"},
        owners=[spec.owner] if spec.owner else None,
        description=f"Batch scores of `{spec.name}` on each day's governed `{spec.source}`: the champion version "
        f"applied to every row, stored with `model_version` at `<lake>/models/{spec.name}/scores/date=…/`. "
        "A new champion does not re-score old days by itself: the `scored_by_champion` check marks days "
        "scored by another version; backfill those partitions to re-score them.",
        check_specs=[
            dg.AssetCheckSpec(
                "one_score_per_governed_row", asset=key, description="Exactly one score per governed row (by key)."
            ),
            dg.AssetCheckSpec(
                "scores_in_range", asset=key, description="No missing score; probabilities within [0, 1]."
            ),
            dg.AssetCheckSpec(
                "scored_by_champion", asset=key, description="Scored by the version the registry names champion now."
            ),
        ],
    )
    def scores(context: dg.AssetExecutionContext, config: ScoringConfig, lake: LakeResource):
        store = lake.get()
        partition = context.partition_key
        try:
            rows = read_parquet_dir(store.table_dir("governed", spec.source, partition))
        except FileNotFoundError:
            raise dg.Failure(
                f"{spec.source}/governed has no partition {partition} at "
                f"{store.table_dir('governed', spec.source, partition)}: "
                f"materialize {spec.source}/governed for {partition} first",
                allow_retries=False,
            ) from None
        registry = registry_for(store, spec)
        try:
            scored = score_partition(registry, rows, config.model_version, config.high_risk_threshold)
        except ScoringError as error:
            raise dg.Failure(str(error), allow_retries=False) from None
        context.log.info(
            f"{spec.name} {scored.model_version}: scored {len(scored.frame)} {spec.source} rows of {partition}"
        )
        meta = scores_metadata(scored)
        yield dg.Output(
            scored.frame, metadata=meta, data_version=dg.DataVersion(f"{scored.model_version}:{len(scored.frame)}")
        )
        yield from scores_check_results(registry, rows, scored, key)

    return scores


def scores_check_results(registry: ModelRegistry, governed: pd.DataFrame, scored: ScoredPartition, key: dg.AssetKey):
    frame = scored.frame
    id_column = "txn_id" if "txn_id" in frame.columns else None
    if id_column:
        missing = int((~governed[id_column].isin(frame[id_column])).sum())
        duplicated = int(frame[id_column].duplicated().sum())
    else:
        missing, duplicated = max(len(governed) - len(frame), 0), 0
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="one_score_per_governed_row",
        passed=len(frame) == len(governed) and not missing and not duplicated,
        metadata={
            "governed_rows": len(governed),
            "scored_rows": len(frame),
            "unscored": missing,
            "duplicated": duplicated,
        },
    )
    score = frame["risk_score"]
    null = int(score.isna().sum())
    outside = (
        int(((score < 0) | (score > 1)).sum())
        if registry.read_card(scored.model_version).get("score_method") == "predict_proba"
        else 0
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="scores_in_range",
        passed=not null and not outside,
        metadata={"null_scores": null, "outside_0_1": outside},
    )
    try:
        champion, alias = champion_version(registry)
    except ScoringError:
        champion, alias = None, None
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="scored_by_champion",
        passed=champion == scored.model_version,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if champion == scored.model_version
        else f"scored by {scored.model_version}; the champion ({alias}) is {champion}: backfill this partition to "
        "re-score",
        metadata={"scored_by": scored.model_version, "champion": champion or "none"},
    )
