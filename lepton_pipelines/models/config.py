"""Model declarations: which models exist, what they learn from, and the rule that promotes them.

A model is added by a block in ``models.yaml`` (features, label, estimator, params, thresholds,
deploy target), never by new Python. Everything is validated when definitions load, and every
problem names the file, the model and the field, so a typo fails fast instead of mid-training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lepton_pipelines.models.estimators import ESTIMATORS

SHIPPED_MODELS_FILE = Path(__file__).parent / "models.yaml"
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
FeatureType = Literal["float", "integer", "string", "boolean"]
Task = Literal["anomaly", "classification"]
ScoreMethod = Literal["predict_proba", "decision_function", "score_samples", "predict"]


class ModelConfigError(ValueError):
    """The model configuration is invalid; the message names the file, model and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    name: str = Field(min_length=1)
    type: FeatureType


class SplitSpec(_Strict):
    """How the held-out split is cut.

    ``time``: the latest ``test_fraction`` of rows by ``time_column`` is held out — what a model
    meets in production is the future, so telemetry models are judged on it. ``random``: a seeded
    shuffle, stratified on the label for classifiers, for rare labels that a time cut could leave
    out of the held-out set entirely.
    """

    method: Literal["time", "random"] = "random"
    time_column: str | None = None
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitSpec:
        if self.method == "time" and not self.time_column:
            raise ValueError("split.method 'time' needs split.time_column (the event-time column)")
        return self


class TrainingSpec(_Strict):
    lookback_partitions: int = Field(default=30, ge=1, description="latest governed partitions to train on")
    min_rows: int = Field(default=100, ge=10, description="fewer usable rows fail the run instead of training")
    seed: int = 42
    split: SplitSpec = SplitSpec()


class MetricBounds(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> MetricBounds:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class PromotionSpec(_Strict):
    """Champion/challenger: the candidate must pass ``thresholds`` and, on every metric in
    ``compare``, be no worse than production by more than ``tolerance``."""

    thresholds: dict[str, MetricBounds] = Field(default_factory=dict)
    compare: dict[str, Literal["higher_is_better", "lower_is_better"]] = Field(default_factory=dict)
    tolerance: float = Field(default=0.0, ge=0.0)


class DeploySpec(_Strict):
    target: Literal["docker_host", "kubernetes"] = "docker_host"
    config: dict[str, Any] = Field(default_factory=dict, description="target-specific deploy configuration")
    target_options: dict[str, Any] = Field(
        default_factory=dict, description="constructor options of the target (e.g. kubernetes dry_run, kubeconfig)"
    )


class ModelSpec(_Strict):
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    description: str = ""
    owner: str | None = None
    task: Task
    source: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="governed source the model learns from")
    features: list[FeatureSpec] = Field(min_length=1)
    label: str | None = Field(default=None, description="target column (classification)")
    evaluation_label: str | None = Field(
        default=None,
        description="anomaly models: optional ground-truth column (e.g. injected anomalies) used only to score",
    )
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    training: TrainingSpec = TrainingSpec()
    promotion: PromotionSpec = PromotionSpec()
    deploy: DeploySpec = DeploySpec()

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[FeatureSpec]) -> list[FeatureSpec]:
        names = [f.name for f in features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {', '.join(duplicates)}")
        return features

    @model_validator(mode="after")
    def _task_fits(self) -> ModelSpec:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} is unknown; allowed: {', '.join(sorted(ESTIMATORS))}")
        if ESTIMATORS[self.estimator].task != self.task:
            raise ValueError(
                f"estimator {self.estimator!r} is for task {ESTIMATORS[self.estimator].task!r}, model task is "
                f"{self.task!r}"
            )
        if self.task == "classification" and not self.label:
            raise ValueError("a classification model needs 'label' (the target column)")
        if self.task == "anomaly" and self.label:
            raise ValueError("an anomaly model learns without a label; use 'evaluation_label' to score against one")
        feature_names = {f.name for f in self.features}
        for column in (self.label, self.evaluation_label):
            if column and column in feature_names:
                raise ValueError(f"{column!r} is both a feature and a label: the model would see the answer")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def split_time_column(self) -> str | None:
        split = self.training.split
        return split.time_column if split.method == "time" else None

    @property
    def score_method(self) -> ScoreMethod:
        return ESTIMATORS[self.estimator].score_method


class _ModelsFile(_Strict):
    models: list[ModelSpec]


def parse_models(raw: Any, source: str) -> list[ModelSpec]:
    """Validate a parsed models document; every error names ``source``, the model and the field."""
    try:
        parsed = _ModelsFile.model_validate(raw)
    except ValidationError as error:
        models = raw.get("models") if isinstance(raw, dict) else None
        problems = []
        for issue in error.errors():
            loc = list(issue["loc"])
            parts = [".".join(str(part) for part in loc)]
            if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int) and isinstance(models, list):
                entry = models[loc[1]] if loc[1] < len(models) else None
                name = entry.get("name") if isinstance(entry, dict) else None
                if name:
                    parts = [f"model {name!r}", ".".join(str(part) for part in loc[2:])]
            message = (
                "unknown field" if issue["type"] == "extra_forbidden" else issue["msg"].removeprefix("Value error, ")
            )
            problems.append(": ".join([p for p in parts if p] + [message]))
        raise ModelConfigError(f"{source}: " + "; ".join(problems)) from None
    names = [m.name for m in parsed.models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelConfigError(f"{source}: model names must be unique; duplicated: {', '.join(duplicates)}")
    return parsed.models


def load_models(path: Path = SHIPPED_MODELS_FILE) -> list[ModelSpec]:
    try:
        raw = yaml.load(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )  # libyaml: faster load
    except yaml.YAMLError as error:
        raise ModelConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_models(raw, str(path))


def model_by_name(name: str, models: list[ModelSpec] | None = None) -> ModelSpec:
    specs = models if models is not None else load_models()
    for spec in specs:
        if spec.name == name:
            return spec
    raise ModelConfigError(f"model {name!r} is not declared; declared models: {', '.join(s.name for s in specs)}")
