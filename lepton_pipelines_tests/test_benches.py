"""The benchmarks still run: each cheap one end to end at a tiny size, as a subprocess, the way a developer
runs it. Targets are not judged here (benchmarks print ratios, never timed tests); what is checked is that
a bench finishes and its own correctness assertions hold — the landing-sensor bench once went stale when
the sensor learned to skip days before a source's start_date, and nothing ran it to notice.

The benches that need a running webserver and daemon (``launch.py``, ``backfill.py``) are left to
``sources/test_backfill_launch_paths.py``, which drives the same machinery; their floor's code location is
loaded here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

pytestmark = pytest.mark.timeout(300)


def _bench(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **(env or {})},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def test_landing_sensor_bench_plans_every_file():
    out = _bench("bench/landing_sensor.py", "--files", "240", "--days", "30")
    assert "first tick: " in out and "for 240 files" in out, out
    assert "tick with one rewritten file" in out and "→ 1 run request(s)" in out, out


def test_pipeline_bench_runs_every_phase_with_equal_governed_rows():
    out = _bench("bench/pipeline.py", "--rows", "3000", "--repeat", "1")
    assert "(equal)" in out and "time ratio pipeline/DuckDB peer" in out, out
    for phase in ("baseline (pyarrow csv→pq)", "DuckDB peer", "floor (same job shape, no work)", "raw → clean"):
        assert phase in out, out


def test_backfill_floor_location_has_the_real_sources_shape(tmp_path):
    """The floor location loads, and its job carries exactly the checks the real source's job carries."""
    sys.path.insert(0, str(BENCH))
    try:
        import backfill
    finally:
        sys.path.remove(str(BENCH))
    floor_yaml = tmp_path / f"{backfill.FLOOR_SOURCE}.yaml"  # the registry requires name == file name
    floor_yaml.write_text(backfill.bench_source_yaml(backfill.FLOOR_SOURCE))
    code = (
        "import sys, json; sys.path.insert(0, 'bench'); import backfill_floor as f;"
        f"job = f.defs.resolve_job_def('{backfill.FLOOR_SOURCE}_job');"
        "print(json.dumps(sorted(k.name for k in job.asset_layer.asset_graph.asset_check_keys)))"
    )
    out = _bench("-c", code, env={"LEPTON_FLOOR_SOURCE": str(floor_yaml)})
    floor_checks = out.strip().splitlines()[-1]

    from lepton_pipelines.definitions import defs

    real = defs.resolve_job_def("transactions_job")
    assert json.loads(floor_checks) == sorted(k.name for k in real.asset_layer.asset_graph.asset_check_keys)
