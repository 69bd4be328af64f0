"""Load the model artifact (model.joblib + model_card.json) and turn rows into scores.

Loading runs in a background thread so /health answers at once while a large model loads;
/ready flips only after a warm-up prediction on the card's sample_input succeeded, which also
proves the estimator works with the library versions pinned in this image.
"""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .schema import Feature, parse_feature_schema

SCORE_METHODS = ("predict_proba", "decision_function", "score_samples", "predict")
TASKS = ("anomaly", "classification")


class ModelCard:
    """The parts of model_card.json the service relies on, checked once at start."""

    def __init__(self, raw: dict[str, Any], source: str):
        def need(key: str, allowed: tuple[str, ...] | None = None) -> Any:
            if key not in raw:
                raise ValueError(f"{source}: missing {key!r}")
            if allowed and raw[key] not in allowed:
                raise ValueError(f"{source}: {key!r} is {raw[key]!r}; allowed: {', '.join(allowed)}")
            return raw[key]

        self.name = str(need("name"))
        self.version = str(need("version"))
        self.task = need("task", TASKS)
        self.score_method = need("score_method", SCORE_METHODS)
        try:
            self.features: list[Feature] = parse_feature_schema(need("feature_schema"))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        self.sample_input: list[dict[str, Any]] = list(raw.get("sample_input") or [])
        self.library_versions: dict[str, str] = dict(raw.get("library_versions") or {})

    @classmethod
    def read(cls, model_dir: Path) -> ModelCard:
        path = model_dir / "model_card.json"
        return cls(json.loads(path.read_text(encoding="utf-8")), str(path))


def rows_to_frame(rows: list[dict[str, Any]], features: list[Feature]):
    """Build the DataFrame in schema column order with dtypes matching the declared types."""
    import pandas as pd  # imported lazily: schema checks and /health must not wait for pandas

    frame = pd.DataFrame.from_records(rows, columns=[feature.name for feature in features])
    for feature in features:
        column = frame[feature.name]
        has_nulls = bool(column.isna().any())
        if feature.type == "float":
            frame[feature.name] = column.astype("float64")
        elif feature.type == "integer":
            frame[feature.name] = column.astype("float64" if has_nulls else "int64")
        elif feature.type == "boolean" and not has_nulls:
            frame[feature.name] = column.astype("bool")
    return frame


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class LoadedModel:
    def __init__(self, estimator: Any, card: ModelCard):
        self.estimator = estimator
        self.card = card

    def score(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Scores per the card's score_method; ``is_anomaly`` / ``labels`` when the estimator can tell."""
        frame = rows_to_frame(rows, self.card.features)
        method = self.card.score_method
        result: dict[str, Any] = {}
        if method == "predict_proba":
            proba = self.estimator.predict_proba(frame)
            classes = list(getattr(self.estimator, "classes_", range(proba.shape[1])))
            if proba.shape[1] == 2:
                # sklearn orders classes_ ascending: column 1 is the positive class (1 / True).
                scores = proba[:, 1]
            else:
                scores = proba.max(axis=1)
            result["labels"] = [_plain(classes[i]) for i in proba.argmax(axis=1)]
        else:
            scores = getattr(self.estimator, method)(frame)
            if method != "predict" and hasattr(self.estimator, "predict"):
                if self.card.task == "anomaly":
                    result["is_anomaly"] = self._anomaly_flags(frame, scores)
                else:
                    result["labels"] = [_plain(value) for value in self.estimator.predict(frame)]
        result["scores"] = [_finite_or_none(float(value)) for value in scores]
        return result

    def _anomaly_flags(self, frame: Any, scores: Any) -> list[bool]:
        """sklearn outlier detectors predict -1 where decision_function < 0, and decision_function
        is score_samples - offset_: derive the flag from the scores instead of scoring twice."""
        final = self.estimator.steps[-1][1] if hasattr(self.estimator, "steps") else self.estimator
        offset = getattr(final, "offset_", None)
        if self.card.score_method == "decision_function" and offset is not None:
            return [bool(value < 0) for value in scores]
        if self.card.score_method == "score_samples" and offset is not None:
            return [bool(value < offset) for value in scores]
        return [bool(value == -1) for value in self.estimator.predict(frame)]


def _plain(value: Any) -> Any:
    """numpy scalars → JSON-serialisable Python values."""
    return value.item() if hasattr(value, "item") else value


class ModelHolder:
    """Thread-safe holder for the model's lifecycle: loading → ready | failed."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self.card = ModelCard.read(model_dir)
        self._loaded: LoadedModel | None = None
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._done = threading.Event()

    @property
    def model(self) -> LoadedModel | None:
        return self._loaded

    def load(self) -> None:
        started = time.perf_counter()
        step = f"unpickling {self.model_dir / 'model.joblib'}"
        try:
            import joblib

            estimator = joblib.load(self.model_dir / "model.joblib")
            loaded = LoadedModel(estimator, self.card)
            if self.card.sample_input:
                step = f"warm-up prediction on sample_input of {self.model_dir / 'model_card.json'}"
                warm = loaded.score(self.card.sample_input)
                if len(warm["scores"]) != len(self.card.sample_input):
                    raise RuntimeError(f"got {len(warm['scores'])} scores for {len(self.card.sample_input)} rows")
            self._loaded = loaded
        except Exception as exc:  # any failure keeps the service unready, with the reason visible on /ready
            self.error = f"model failed to load: {step}: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            self.load_seconds = time.perf_counter() - started
            self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)
