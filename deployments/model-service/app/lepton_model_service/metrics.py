"""Prometheus text exposition (format 0.0.4) for the model service, stdlib only.

A handful of counters and one histogram do not justify a dependency in every model image;
what the scrape needs is correct escaping, cumulative buckets and thread safety, all here.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

# Seconds. Dense under 100 ms where single-row scoring lives, sparse above for batch requests.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{key}="{_escape(str(val))}"' for key, val in pairs.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value)) + ".0"


class ServiceMetrics:
    """Request counts by endpoint/method/status, latency histogram by endpoint, model gauges."""

    def __init__(self, model_labels: dict[str, str]):
        self._lock = threading.Lock()
        self._model_labels = model_labels
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._bucket_counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._latency_count: dict[str, int] = defaultdict(int)
        self._rows_scored = 0
        self._ready = 0
        self._load_seconds = 0.0
        self._start_time = time.time()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(endpoint, method, str(status))] += 1
            counts = self._bucket_counts[endpoint]
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
                    break
            self._latency_sum[endpoint] += seconds
            self._latency_count[endpoint] += 1

    def add_rows_scored(self, rows: int) -> None:
        with self._lock:
            self._rows_scored += rows

    def set_ready(self, ready: bool, load_seconds: float | None = None) -> None:
        with self._lock:
            self._ready = 1 if ready else 0
            if load_seconds is not None:
                self._load_seconds = load_seconds

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP lepton_model_info Model served by this process (value is always 1).",
                "# TYPE lepton_model_info gauge",
                f"lepton_model_info{_labels(self._model_labels)} 1.0",
                "# HELP lepton_model_ready 1 when the model is loaded and answering /predict.",
                "# TYPE lepton_model_ready gauge",
                f"lepton_model_ready {self._ready}.0",
                "# HELP lepton_model_load_seconds Time taken to load and warm up the model.",
                "# TYPE lepton_model_load_seconds gauge",
                f"lepton_model_load_seconds {_number(self._load_seconds)}",
                "# HELP lepton_model_start_time_seconds Unix time the process started.",
                "# TYPE lepton_model_start_time_seconds gauge",
                f"lepton_model_start_time_seconds {_number(self._start_time)}",
                "# HELP lepton_model_rows_scored_total Rows scored by /predict.",
                "# TYPE lepton_model_rows_scored_total counter",
                f"lepton_model_rows_scored_total {self._rows_scored}.0",
                "# HELP lepton_model_requests_total HTTP requests by endpoint, method and status code.",
                "# TYPE lepton_model_requests_total counter",
            ]
            for (endpoint, method, status), count in sorted(self._requests.items()):
                labels = _labels({"endpoint": endpoint, "method": method, "status": status})
                lines.append(f"lepton_model_requests_total{labels} {count}.0")
            lines += [
                "# HELP lepton_model_request_duration_seconds HTTP request latency by endpoint.",
                "# TYPE lepton_model_request_duration_seconds histogram",
            ]
            for endpoint in sorted(self._bucket_counts):
                cumulative = 0
                for bound, count in zip(LATENCY_BUCKETS, self._bucket_counts[endpoint], strict=True):
                    cumulative += count
                    labels = _labels({"endpoint": endpoint, "le": _number(bound)})
                    lines.append(f"lepton_model_request_duration_seconds_bucket{labels} {cumulative}.0")
                total = self._latency_count[endpoint]
                lines.append(
                    f"lepton_model_request_duration_seconds_bucket{_labels({'endpoint': endpoint, 'le': '+Inf'})}"
                    f" {total}.0"
                )
                lines.append(
                    f"lepton_model_request_duration_seconds_sum{_labels({'endpoint': endpoint})}"
                    f" {_number(self._latency_sum[endpoint])}"
                )
                lines.append(f"lepton_model_request_duration_seconds_count{_labels({'endpoint': endpoint})} {total}.0")
        return "\n".join(lines) + "\n"
