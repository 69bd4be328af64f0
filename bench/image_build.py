"""Model-service image benchmark: cold vs warm build, image size, /predict latency and throughput.

Cold = ``docker build --no-cache`` (wheels already in the host cache, so this is the engine's own
work: venv, pip install from local wheels, layers). Warm = the same artifact rebuilt with the layer
cache, the case of every retrain that keeps its library versions. Serving is measured against the
container on the host network (127.0.0.1 only) with bounded request loops; ratios are against the
baselines measured in this same run (cold build, 1-row requests).

The model is the shipped ``device_anomaly`` declaration (models.yaml) trained on simulated telemetry
by the models folder's own training and registry code, so the image holds what production would
build from; it is registered under its own name (``bench_device_anomaly``) in a throwaway lake.

Run: LEPTON_BASE_IMAGE=lepton/python-base:bookworm LEPTON_IMAGE_REGISTRY=127.0.0.1:5000 \
     .venv/bin/python bench/image_build.py [--requests 400] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker
import pandas as pd
from upath import UPath

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lepton_pipelines.delivery.hardening import HARDENING  # noqa: E402
from lepton_pipelines.delivery.images.builder import ModelImageBuilder  # noqa: E402
from lepton_pipelines.iot.simulator import SimulatorConfig, generate  # noqa: E402
from lepton_pipelines.models.config import model_by_name  # noqa: E402
from lepton_pipelines.models.registry import ModelRegistry, build_card  # noqa: E402
from lepton_pipelines.models.training import library_versions, serialize, train_model  # noqa: E402

MODEL = "device_anomaly"
BENCH_NAME = "bench_device_anomaly"  # image lepton/model-bench_device_anomaly: never mistaken for the real model's


def telemetry(devices: int, messages_per_device: int, seed: int) -> pd.DataFrame:
    """Well-formed simulated device telemetry, one row a message (what governed device_telemetry holds)."""
    config = SimulatorConfig(devices=devices, messages_per_device=messages_per_device, seed=seed)
    return pd.DataFrame([json.loads(message.payload) for message in generate(config)])


def register_model(lake_dir: Path) -> UPath:
    """Train the shipped model declaration and register it like the training asset does; its artifact folder."""
    spec = model_by_name(MODEL)
    frame = telemetry(devices=20, messages_per_device=100, seed=7)
    trained = train_model(spec, frame)
    card = build_card(
        spec,
        trained.metrics,
        trained.sample_input,
        library_versions(),
        {"data": "simulated telemetry", "rows": len(frame)},
    )
    registry = ModelRegistry(UPath(lake_dir) / "models", BENCH_NAME)
    return registry.version_dir(registry.write_version(serialize(trained.estimator), card).version)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"service on 127.0.0.1:{port} not ready after {timeout}s")


def request_loop(port: int, body: bytes, max_requests: int, max_seconds: float) -> list[float]:
    """Sequential requests on one keep-alive connection; bounded by count and by time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    deadline = time.monotonic() + max_seconds
    while len(latencies) < max_requests and time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}")
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


def measure(port: int, rows: int, max_requests: int, max_seconds: float, clients: int) -> dict[str, float]:
    features = model_by_name(MODEL).feature_names
    records = json.loads(
        telemetry(devices=10, messages_per_device=10, seed=3)[features].head(rows).to_json(orient="records")
    )
    body = json.dumps({"rows": records}).encode()
    request_loop(port, body, 20, 5)  # warm-up: connection, pandas code paths
    sequential = request_loop(port, body, max_requests, max_seconds)
    results: list[list[float]] = [[] for _ in range(clients)]

    def worker(index: int) -> None:
        results[index] = request_loop(port, body, max_requests // clients, max_seconds)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done = sum(len(r) for r in results)
    ordered = sorted(sequential)
    return {
        "rows": rows,
        "requests": len(sequential),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "req_per_s": done / elapsed,
        "rows_per_s": done * rows / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="max requests per loop")
    parser.add_argument("--seconds", type=float, default=20.0, help="max seconds per loop")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for the throughput loop")
    args = parser.parse_args()
    from definitions_timing import report_definitions_import

    report_definitions_import()

    registry = os.environ.get("LEPTON_IMAGE_REGISTRY", "127.0.0.1:5000")
    base_image = os.environ.get("LEPTON_BASE_IMAGE", "lepton/python-base:bookworm")
    builder = ModelImageBuilder(registry, base_image=base_image)
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as scratch:
        artifact = register_model(Path(scratch) / "lake")
        started = time.perf_counter()
        builder.build(artifact, nocache=True, push=False)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = builder.build(artifact, nocache=False, push=True)
        warm_s = time.perf_counter() - started

    port = free_port()
    container = client.containers.run(
        warm.reference,
        detach=True,
        network_mode="host",
        **HARDENING.docker_run_kwargs(),
        environment={"PORT": str(port), "HOST": "127.0.0.1"},
    )
    try:
        wait_ready(port)
        serving = [measure(port, rows, args.requests, args.seconds, args.clients) for rows in (1, 100)]
    finally:
        container.remove(force=True)
        client.images.remove(warm.reference, force=True)

    print(f"\nmodel-service image ({base_image}), {os.cpu_count()} CPUs")
    print(f"{'build':<28}{'seconds':>10}{'ratio':>10}")
    print(f"{'cold (no cache)':<28}{cold_s:>10.1f}{1.0:>10.2f}")
    print(f"{'warm (layer cache) + push':<28}{warm_s:>10.1f}{warm_s / cold_s:>10.2f}")
    print(f"image size: {warm.size_bytes / 1e6:.0f} MB (base image included)")
    print(
        f"\n{'rows/request':<14}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'req/s':>10}{'rows/s':>12}{'rows/s ratio':>14}"
    )
    baseline = serving[0]["rows_per_s"]
    for row in serving:
        print(
            f"{row['rows']:<14}{row['requests']:>10}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['req_per_s']:>10.1f}{row['rows_per_s']:>12.0f}{row['rows_per_s'] / baseline:>14.1f}"
        )
    print(f"(latency: 1 sequential keep-alive client; throughput: {args.clients} concurrent clients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
