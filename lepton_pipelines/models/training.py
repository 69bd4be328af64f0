"""Train and evaluate a declared model on a DataFrame: split, fit, score on held-out rows.

Pure pandas/scikit-learn (no Dagster, no lake), deterministic for a given frame and seed, so the
same governed data always yields byte-identical artifacts — which is what makes content-derived
model versions idempotent.

scikit-learn and joblib are imported by the functions that use them: this module is imported at
definitions load (the model assets name its errors), where they would cost ~1.5 s in every process.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

from lepton_pipelines.models.config import ModelSpec
from lepton_pipelines.models.estimators import ESTIMATORS

# Every library the pickled pipeline needs at load time; the image pins exactly these versions.
SERVING_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "pandas")
SAMPLE_ROWS = 3


class TrainingDataError(ValueError):
    """The training data cannot produce a trustworthy model; the message says which column/rows and why."""


@dataclass(frozen=True)
class TrainedModel:
    estimator: Pipeline
    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    held_out: pd.DataFrame  # the evaluation rows, kept so the production model can be scored on the same data
    sample_input: list[dict[str, Any]]


def prepare_frame(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the columns the model uses, typed as declared; drop rows without a label (unlabelled yet)."""
    needed = spec.feature_names + [c for c in (spec.label, spec.split_time_column) if c]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"model {spec.name!r}: governed {spec.source!r} data lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
    keep = needed + ([spec.evaluation_label] if spec.evaluation_label in frame.columns else [])
    prepared = frame[list(dict.fromkeys(keep))].copy()
    for feature in spec.features:
        if feature.type in ("float", "integer"):
            try:
                prepared[feature.name] = pd.to_numeric(prepared[feature.name], errors="raise").astype("float64")
            except (TypeError, ValueError) as error:
                raise TrainingDataError(
                    f"model {spec.name!r}: feature {feature.name!r} is declared {feature.type} but holds "
                    f"non-numeric values ({error})"
                ) from None
    if spec.label:
        unlabelled = prepared[spec.label].isna()
        prepared = prepared[~unlabelled]
        prepared[spec.label] = prepared[spec.label].astype(bool)
    return prepared.reset_index(drop=True)


def split(spec: ModelSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/held-out split per ``spec.training.split`` (see SplitSpec for why two methods)."""
    plan = spec.training.split
    if plan.method == "time":
        ordered = frame.sort_values(plan.time_column, kind="mergesort").reset_index(drop=True)
        cut = len(ordered) - max(1, round(len(ordered) * plan.test_fraction))
        return ordered.iloc[:cut], ordered.iloc[cut:]
    from sklearn.model_selection import train_test_split

    stratify = frame[spec.label] if spec.task == "classification" else None
    try:
        train, test = train_test_split(
            frame, test_size=plan.test_fraction, random_state=spec.training.seed, stratify=stratify
        )
    except ValueError as error:  # e.g. a class with a single row cannot be stratified
        raise TrainingDataError(f"model {spec.name!r}: cannot split {len(frame)} rows: {error}") from None
    return train.sort_index(), test.sort_index()


def fit(spec: ModelSpec, train: pd.DataFrame) -> Pipeline:
    kind = ESTIMATORS[spec.estimator]
    pipeline = kind.build([(f.name, f.type) for f in spec.features], dict(spec.params), spec.training.seed)
    if spec.task == "classification":
        _require_both_classes(spec, train[spec.label], "training")
        pipeline.fit(train[spec.feature_names], train[spec.label])
    else:
        pipeline.fit(train[spec.feature_names])
    return pipeline


def evaluate(
    spec: ModelSpec, estimator: Pipeline, held_out: pd.DataFrame, training_anomaly_rate: float | None = None
) -> dict[str, float]:
    """Held-out metrics. Anomaly models compare their flag rate with the one seen in training
    (``training_anomaly_rate``) and, when ground truth exists, with it too."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    features = held_out[spec.feature_names]
    if spec.task == "classification":
        truth = held_out[spec.label].to_numpy(dtype=bool)
        _require_both_classes(spec, held_out[spec.label], "held-out")
        positive = list(estimator.classes_).index(True)
        probability = estimator.predict_proba(features)[:, positive]
        predicted = probability >= 0.5
        return _rounded(
            {
                "roc_auc": roc_auc_score(truth, probability),
                "average_precision": average_precision_score(truth, probability),
                "precision": precision_score(truth, predicted, zero_division=0),
                "recall": recall_score(truth, predicted, zero_division=0),
                "f1": f1_score(truth, predicted, zero_division=0),
                "accuracy": accuracy_score(truth, predicted),
                "brier": brier_score_loss(truth, probability),
                "positive_rate": float(truth.mean()),
                "test_rows": len(held_out),
            }
        )
    flagged = estimator.predict(features) == -1
    metrics: dict[str, float] = {"anomaly_rate": float(flagged.mean()), "test_rows": len(held_out)}
    if training_anomaly_rate is not None:
        metrics["training_anomaly_rate"] = training_anomaly_rate
        metrics["anomaly_rate_shift"] = abs(metrics["anomaly_rate"] - training_anomaly_rate)
    label = spec.evaluation_label
    if label and label in held_out.columns and held_out[label].notna().all() and held_out[label].nunique() == 2:
        truth = held_out[label].to_numpy(dtype=bool)
        abnormality = -estimator.decision_function(features)  # higher = more anomalous
        metrics.update(
            roc_auc=roc_auc_score(truth, abnormality),
            precision=precision_score(truth, flagged, zero_division=0),
            recall=recall_score(truth, flagged, zero_division=0),
            f1=f1_score(truth, flagged, zero_division=0),
        )
    return _rounded(metrics)


def train_model(spec: ModelSpec, frame: pd.DataFrame) -> TrainedModel:
    prepared = prepare_frame(spec, frame)
    if len(prepared) < spec.training.min_rows:
        raise TrainingDataError(
            f"model {spec.name!r}: only {len(prepared)} usable row(s) in governed {spec.source!r} data; "
            f"training.min_rows is {spec.training.min_rows} — materialize more partitions or lower min_rows"
        )
    train, held_out = split(spec, prepared)
    estimator = fit(spec, train)
    training_anomaly_rate = (
        float((estimator.predict(train[spec.feature_names]) == -1).mean()) if spec.task == "anomaly" else None
    )
    metrics = evaluate(spec, estimator, held_out, training_anomaly_rate)
    metrics["train_rows"] = len(train)
    return TrainedModel(
        estimator=estimator,
        metrics=metrics,
        train_rows=len(train),
        test_rows=len(held_out),
        held_out=held_out,
        sample_input=json_rows(held_out[spec.feature_names].head(SAMPLE_ROWS)),
    )


def serialize(estimator: Pipeline) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def deserialize(artifact: bytes) -> Pipeline:
    import joblib

    return joblib.load(io.BytesIO(artifact))


def library_versions() -> dict[str, str]:
    return {library: installed_version(library) for library in SERVING_LIBRARIES}


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values (NaN → null), the shape ``POST /predict`` accepts."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _require_both_classes(spec: ModelSpec, labels: pd.Series, which: str) -> None:
    counts = labels.value_counts()
    if len(counts) < 2:
        raise TrainingDataError(
            f"model {spec.name!r}: the {which} rows hold only one class of {spec.label!r} "
            f"({', '.join(f'{k}: {v}' for k, v in counts.items()) or 'no rows'}); a classifier needs both — "
            "train on more partitions or change split.test_fraction"
        )


def _rounded(metrics: dict[str, Any]) -> dict[str, float]:
    # Rounding keeps cards readable and versions stable against last-bit float noise across platforms.
    return {k: (int(v) if isinstance(v, (int, np.integer)) else round(float(v), 6)) for k, v in metrics.items()}
