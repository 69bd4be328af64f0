"""HTTP server: /health, /ready, /predict, /metrics on the stdlib ThreadingHTTPServer.

Stdlib keeps the image to the model's own libraries; scoring is numpy/pandas work that releases
the GIL for the heavy parts, so threads are enough for one container of a horizontally scaled
service. HTTP/1.1 keep-alive is on because clients (and the HPA's load) reuse connections.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .metrics import ServiceMetrics
from .model import ModelHolder
from .schema import InvalidRequest, Problem, extract_rows, validate_rows

KNOWN_ENDPOINTS = {"/health", "/ready", "/predict", "/metrics"}


@dataclass(frozen=True)
class ServiceSettings:
    """Runtime knobs, all from environment variables so one image serves every environment."""

    host: str
    port: int
    model_dir: Path
    max_body_bytes: int
    max_rows: int
    access_log: bool

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ

        def integer(name: str, default: int) -> int:
            raw = env.get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise SystemExit(f"environment variable {name}={raw!r} must be an integer") from None
            if value < 0:
                raise SystemExit(f"environment variable {name}={raw!r} must not be negative")
            return value

        return cls(
            host=env.get("HOST", "0.0.0.0"),
            port=integer("PORT", 8080),
            model_dir=Path(env.get("LEPTON_MODEL_DIR", "/opt/lepton/model")),
            max_body_bytes=integer("LEPTON_MAX_BODY_BYTES", 8 * 1024 * 1024),
            max_rows=integer("LEPTON_MAX_ROWS", 10_000),
            access_log=env.get("LEPTON_ACCESS_LOG", "0").lower() in ("1", "true", "yes"),
        )


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, settings: ServiceSettings, holder: ModelHolder):
        self.settings = settings
        self.holder = holder
        card = holder.card
        self.metrics = ServiceMetrics(
            {"name": card.name, "version": card.version, "task": card.task, "score_method": card.score_method}
        )
        super().__init__((settings.host, settings.port), RequestHandler)

    def start_loading(self) -> threading.Thread:
        def load_then_publish() -> None:
            self.holder.load()
            self.metrics.set_ready(self.holder.model is not None, self.holder.load_seconds)
            if self.holder.model is not None:
                log(
                    f"model {self.holder.card.name}:{self.holder.card.version} ready in {self.holder.load_seconds:.2f}s"
                )

        thread = threading.Thread(target=load_then_publish, name="model-loader", daemon=True)
        thread.start()
        return thread


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class RequestHandler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True
    # Seconds a connection may idle or trickle a body before its thread is freed.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.settings.access_log:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        routes = {
            ("GET", "/health"): self._health,
            ("GET", "/ready"): self._ready,
            ("GET", "/metrics"): self._metrics,
            ("POST", "/predict"): self._predict,
        }
        handler = routes.get((method, path))
        try:
            if handler is not None:
                status = handler()
            elif path in KNOWN_ENDPOINTS:
                allowed = "POST" if path == "/predict" else "GET"
                status = self._json(
                    405, {"error": f"{method} not allowed on {path}; use {allowed}"}, {"Allow": allowed}
                )
            else:
                status = self._json(
                    404, {"error": f"no endpoint {path}; endpoints: {', '.join(sorted(KNOWN_ENDPOINTS))}"}
                )
        except InvalidRequest as exc:
            status = self._json(
                exc.status, {"error": str(exc), "problems": [problem.as_json() for problem in exc.problems]}
            )
        except Exception as exc:  # scoring blew up on valid input: a server bug, report and keep serving
            traceback.print_exc()
            status = self._json(500, {"error": f"scoring failed: {type(exc).__name__}: {exc}"})
        endpoint = path if path in KNOWN_ENDPOINTS else "other"
        self.server.metrics.observe_request(endpoint, method, status, time.perf_counter() - started)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        return self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status >= 400 and status != 503:
            # The body may be unread (oversized, malformed length): do not reuse this connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)
        return status

    def _health(self) -> int:
        return self._json(200, {"status": "alive"})

    def _ready(self) -> int:
        holder = self.server.holder
        card = holder.card
        if holder.model is not None:
            return self._json(200, {"status": "ready", "model": card.name, "version": card.version})
        if holder.error:
            return self._json(503, {"status": "failed", "error": holder.error})
        return self._json(503, {"status": "loading", "model": card.name, "version": card.version})

    def _metrics(self) -> int:
        return self._send(200, self.server.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _read_body(self) -> bytes:
        limit = self.server.settings.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise InvalidRequest(411, [Problem(None, None, "chunked bodies are not supported; send Content-Length")])
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise InvalidRequest(411, [Problem(None, None, "Content-Length header is required")])
        try:
            length = int(raw_length)
        except ValueError:
            raise InvalidRequest(
                400, [Problem(None, None, f"Content-Length {raw_length!r} is not an integer")]
            ) from None
        if length > limit:
            raise InvalidRequest(
                413, [Problem(None, None, f"body is {length} bytes; at most {limit} (LEPTON_MAX_BODY_BYTES)")]
            )
        return self.rfile.read(length)

    def _predict(self) -> int:
        body = self._read_body()
        holder = self.server.holder
        if holder.model is None:
            reason = holder.error or "model is still loading; retry when /ready answers 200"
            return self._json(503, {"error": reason})
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(400, [Problem(None, None, f"body is not valid JSON: {exc}")]) from None
        rows = extract_rows(payload, self.server.settings.max_rows)
        validate_rows(rows, holder.card.features)
        result = holder.model.score(rows)
        self.server.metrics.add_rows_scored(len(rows))
        return self._json(200, {"model": holder.card.name, "version": holder.card.version, **result})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
