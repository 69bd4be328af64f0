"""Tiny trained models in the artifact layout the models folder writes (model.joblib + model_card.json).

Shared by ``lepton_pipelines_tests/delivery`` and ``bench/image_build.py`` (the benchmarks never import the tests).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

FEATURE_SCHEMA = [
    {"name": "temperature", "type": "float"},
    {"name": "pulses", "type": "integer"},
    {"name": "site", "type": "string"},
    {"name": "active", "type": "boolean"},
]


def training_frame(rows: int = 200, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "temperature": rng.normal(20.0, 3.0, rows),
            "pulses": rng.integers(0, 50, rows),
            "site": rng.choice(["north", "south", "east"], rows),
            "active": rng.random(rows) > 0.3,
        }
    )


def _preprocessor():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["temperature", "pulses"]),
            ("site", OneHotEncoder(handle_unknown="ignore"), ["site"]),
            ("flag", "passthrough", ["active"]),
        ]
    )


def library_versions() -> dict[str, str]:
    import joblib as jl
    import scipy
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "joblib": jl.__version__, "pandas": pd.__version__}


def write_model_artifact(directory: Path, name: str, version: str, task: str = "anomaly") -> Any:
    """Train a tiny model and write the artifact layout the models folder produces; return the model."""
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    frame = training_frame()
    if task == "anomaly":
        model = Pipeline([("prep", _preprocessor()), ("model", IsolationForest(n_estimators=25, random_state=0))])
        model.fit(frame)
        score_method = "score_samples"
    else:
        labels = (frame["temperature"] > 21).astype(int)
        model = Pipeline([("prep", _preprocessor()), ("model", LogisticRegression(max_iter=200))])
        model.fit(frame, labels)
        score_method = "predict_proba"
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    sample = json.loads(frame.head(3).to_json(orient="records"))
    card = {
        "name": name,
        "version": version,
        "task": task,
        "score_method": score_method,
        "feature_schema": FEATURE_SCHEMA,
        "library_versions": library_versions(),
        "metrics": {"train_rows": len(frame)},
        "sample_input": sample,
    }
    (directory / "model_card.json").write_text(json.dumps(card, indent=2))
    return model
