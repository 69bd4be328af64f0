"""Fixtures for model-service image tests: tiny trained models in the artifact layout, the
real Docker engine and the registry on 127.0.0.1:5000 (started by scripts/docker-up.sh)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import joblib
import numpy as np
import pandas as pd
import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
REGISTRY = os.environ.get("LEPTON_IMAGE_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("LEPTON_BASE_IMAGE", "lepton/python-base:bookworm")
TEST_LABEL = "org.lepton.test"

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

    return {
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": jl.__version__,
        "pandas": pd.__version__,
    }


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


def unique_version(prefix: str = "v") -> str:
    return f"{prefix}{int(time.time())}-{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "docker-up.sh")], check=True, timeout=900)
    return docker.from_env(timeout=900)


@pytest.fixture(scope="session", autouse=True)
def image_env() -> Iterator[None]:
    """The environment the resource reads: the local registry and the debootstrapped base image."""
    previous = {key: os.environ.get(key) for key in ("LEPTON_IMAGE_REGISTRY", "LEPTON_BASE_IMAGE")}
    os.environ["LEPTON_IMAGE_REGISTRY"] = REGISTRY
    os.environ["LEPTON_BASE_IMAGE"] = BASE_IMAGE
    yield
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class RunningService:
    def __init__(self, container, port: int):
        self.container = container
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status == "exited":
                raise AssertionError(f"container exited: {self.container.logs().decode()[-2000:]}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"service not ready in {timeout}s: {self.container.logs().decode()[-2000:]}")


def run_service(client: docker.DockerClient, image: str, **extra: Any) -> RunningService:
    """Run the image like production would: host network on a free port, read-only rootfs."""
    port = free_port()
    container = client.containers.run(
        image,
        detach=True,
        network_mode="host",
        read_only=True,
        tmpfs={"/tmp": "rw,size=64m"},
        environment={"PORT": str(port), "HOST": "127.0.0.1"},
        labels={TEST_LABEL: "model-service"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        **extra,
    )
    return RunningService(container, port)


def remove_quietly(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
