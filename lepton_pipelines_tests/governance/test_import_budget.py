"""Definitions load stays light: no heavy library is imported by ``lepton_pipelines.definitions``.

Every Dagster process (CLI, webserver reload, daemon, each run worker) imports the code location, so a
library imported at load is paid on every launch. The steps that need GX, scikit-learn, Docker,
Kubernetes or boto import them themselves. Checked on ``sys.modules`` in a fresh interpreter, not by
timing (the import time itself is printed by every bench).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Top-level packages that must not be in sys.modules after importing the definitions, and why.
HEAVY = {
    "great_expectations": "GX: ~2-4 s; validation steps import it (governance.resource / validation)",
    "sklearn": "scikit-learn: ~1.5 s; training steps import it (models.training / estimators)",
    "scipy": "pulled in by scikit-learn",
    "joblib": "model (de)serialization only",
    "matplotlib": "plots only",
    "docker": "Docker SDK: image build and docker_host deploy steps",
    "dagster_docker": "imports the Docker SDK",
    "kubernetes": "Kubernetes client: the deploy step",
    "kubernetes_validate": "manifest validation in the deploy step",
    "boto3": "pulled in by GX; S3 goes through s3fs when a step touches S3",
    "botocore": "as boto3",
    "s3fs": "only when the lake is on S3, opened by the first step that reads or writes it",
    "aiobotocore": "as s3fs",
    "sqlalchemy": "the SQL connector's fetch step (Dagster's own storage imports it when it needs it)",
    "requests": "the HTTP connector's fetch step",
    "duckdb": "~0.1 s; the analytics steps connect (analytics.engine.connect)",
}


def _probe(code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter at the repo root; what it printed last, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _modules_after_import(module: str) -> list[str]:
    return _probe(
        "import json, sys, warnings; warnings.simplefilter('ignore');"
        f"import {module};"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )


def test_definitions_import_no_heavy_library():
    loaded = set(_modules_after_import("lepton_pipelines.definitions"))
    offenders = {name: why for name, why in HEAVY.items() if name in loaded}
    assert not offenders, f"imported at definitions load (move the import into the step that uses it): {offenders}"


def test_the_check_sees_a_heavy_import():
    """The probe itself works: a module that does import GX is caught."""
    loaded = set(_modules_after_import("lepton_pipelines.governance.gx_manifest, great_expectations"))
    assert "great_expectations" in loaded and "boto3" in loaded


def _collector_after_import(env: dict[str, str]) -> dict:
    return _probe(
        "import gc, json, warnings; warnings.simplefilter('ignore')\n"
        "error = None\n"
        "try:\n"
        "    import lepton_pipelines.definitions\n"
        "except Exception as e:\n"
        "    error = type(e).__name__\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'error': error}))",
        env,
    )


def test_the_collector_runs_again_after_the_load(tmp_path):
    """The load pauses the garbage collector (definitions._pause_collector); a process that loaded the code
    location — or failed to, as a code server reporting a bad source file does — collects again."""
    assert _collector_after_import({}) == {"enabled": True, "error": None}
    (tmp_path / "broken.yaml").write_text("name: broken\nconnector: {type: nowhere}\n")
    failed = _collector_after_import({"LEPTON_SOURCES_PATH": str(tmp_path)})
    assert failed["error"] is not None and failed["enabled"] is True
