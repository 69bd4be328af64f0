"""Shared by every bench: how long a fresh interpreter takes to import the code location.

Every Dagster process (CLI, webserver reload, daemon, each run worker) pays it, so each bench prints it
beside its own figures, with the load average that was measured under.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def definitions_import_seconds(repeat: int = 3, module: str = "lepton_pipelines.definitions") -> list[float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", f"import {module}"], env=env, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return times


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def report_definitions_import(repeat: int = 3) -> float:
    times = definitions_import_seconds(repeat)
    floor = definitions_import_seconds(repeat, "dagster")  # what any Dagster code location pays
    median = statistics.median(times)
    print(
        f"definitions import (python -c 'import lepton_pipelines.definitions'): median {median:.2f} s of {repeat} "
        "fresh "
        f"interpreters (min {min(times):.2f} s; target ≤ 1.5 s on a quiet machine); 'import dagster' alone "
        f"{statistics.median(floor):.2f} s; load average {load_average()}"
    )
    return median
