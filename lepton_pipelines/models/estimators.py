"""The estimators a model declaration may name, each a scikit-learn Pipeline built from the features.

Only stock scikit-learn classes go into a pipeline: the pickled artifact is loaded by the
model-service image, which has scikit-learn and friends but not this package, so a custom
transformer would fail to unpickle there. Preprocessing (imputation, one-hot encoding) lives in
the pipeline so the service scores raw feature rows exactly as training saw them.

A new estimator is one ``_register`` call, not an if/else in the training code.

scikit-learn is imported inside the builders: the registry (names, tasks, score methods) is read at
definitions load by every Dagster process, and importing scikit-learn costs ~1.5 s; only training
steps need it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

# (name, type) pairs, type one of float | integer | string | boolean
Features = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class EstimatorKind:
    task: str
    score_method: str
    build: Callable[[Features, dict[str, Any], int], Pipeline]  # (features, params, seed) → unfitted pipeline


ESTIMATORS: dict[str, EstimatorKind] = {}


def _register(name: str, task: str, score_method: str):
    def decorator(build: Callable[[Features, dict[str, Any], int], Pipeline]):
        ESTIMATORS[name] = EstimatorKind(task=task, score_method=score_method, build=build)
        return build

    return decorator


def _columns(features: Features, *types: str) -> list[str]:
    return [name for name, kind in features if kind in types]


def preprocessor(features: Features, scale_numeric: bool, dense: bool) -> ColumnTransformer:
    """Median-impute numbers (optionally scaled), one-hot encode strings and booleans.

    Unknown categories at scoring time encode as all-zeros instead of failing: a new merchant
    category must not take the service down. Missing strings become their own category.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale_numeric else [])
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=not dense),
    )
    boolean = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=not dense),
    )
    transformers = [
        ("numeric", make_pipeline(*numeric_steps), _columns(features, "float", "integer")),
        ("categorical", categorical, _columns(features, "string")),
        ("boolean", boolean, _columns(features, "boolean")),
    ]
    return ColumnTransformer([t for t in transformers if t[2]], remainder="drop")


@_register("isolation_forest", task="anomaly", score_method="decision_function")
def _isolation_forest(features: Features, params: dict[str, Any], seed: int) -> Pipeline:
    """decision_function < 0 marks an outlier, the service reports it as ``is_anomaly``."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("preprocess", preprocessor(features, scale_numeric=False, dense=False)),
            ("model", IsolationForest(**{"random_state": seed, **params})),
        ]
    )


@_register("logistic_regression", task="classification", score_method="predict_proba")
def _logistic_regression(features: Features, params: dict[str, Any], seed: int) -> Pipeline:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("preprocess", preprocessor(features, scale_numeric=True, dense=False)),
            ("model", LogisticRegression(**{"max_iter": 1000, "random_state": seed, **params})),
        ]
    )


@_register("hist_gradient_boosting", task="classification", score_method="predict_proba")
def _hist_gradient_boosting(features: Features, params: dict[str, Any], seed: int) -> Pipeline:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("preprocess", preprocessor(features, scale_numeric=False, dense=True)),
            ("model", HistGradientBoostingClassifier(**{"random_state": seed, **params})),
        ]
    )
