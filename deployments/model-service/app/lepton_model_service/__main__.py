"""Entry points: ``serve`` (default), ``smoke`` and ``healthcheck``.

``smoke`` runs the real server in-process on a free 127.0.0.1 port and drives it like a client,
so a pipeline can prove a freshly pushed image works by running just the image — no port
mapping, no second container, no network beyond loopback.
"""

from __future__ import annotations

import http.client
import json
import math
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from .model import ModelHolder
from .server import ModelServer, ServiceSettings, log


def serve(settings: ServiceSettings) -> int:
    holder = ModelHolder(settings.model_dir)
    server = ModelServer(settings, holder)

    def stop(signum: int, _frame: Any) -> None:
        # PID 1 in a container gets no default SIGTERM handling: without this, `docker stop`
        # and pod termination wait out their grace period. shutdown() must run off this thread.
        log(f"received signal {signum}, draining and stopping")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start_loading()
    log(f"serving {holder.card.name}:{holder.card.version} on {settings.host}:{server.server_address[1]}")
    server.serve_forever()
    server.server_close()
    return 0


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def smoke(settings: ServiceSettings, ready_timeout: float) -> int:
    """Exit 0 when /health, /ready, /predict (card's sample_input) and /metrics all behave."""
    holder = ModelHolder(settings.model_dir)
    server = ModelServer(replace(settings, host="127.0.0.1", port=0), holder)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.start_loading()
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> bool:
        checks.append({"check": name, "ok": ok, "detail": detail})
        return ok

    try:
        status, body = _call(port, "GET", "/health")
        check("health", status == 200, f"HTTP {status}")
        holder.wait(ready_timeout)
        status, body = _call(port, "GET", "/ready")
        if check("ready", status == 200, f"HTTP {status} {body.decode(errors='replace')[:500]}"):
            rows = holder.card.sample_input
            if check("sample_input", bool(rows), f"{len(rows)} rows in model_card.json sample_input"):
                status, body = _call(port, "POST", "/predict", {"rows": rows})
                scores = json.loads(body).get("scores", []) if status == 200 else []
                good = (
                    status == 200
                    and len(scores) == len(rows)
                    and all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores)
                )
                check(
                    "predict",
                    good,
                    f"HTTP {status}, {len(scores)} finite scores for {len(rows)} rows"
                    if status == 200
                    else f"HTTP {status} {body.decode(errors='replace')[:500]}",
                )
            status, body = _call(port, "GET", "/metrics")
            check("metrics", status == 200 and b"lepton_model_info{" in body, f"HTTP {status}")
    except Exception as exc:  # a crash in the smoke itself is a failed smoke, with the reason
        check("smoke", False, f"{type(exc).__name__}: {exc}")
    finally:
        server.shutdown()
        server.server_close()
    ok = all(item["ok"] for item in checks)
    print(
        json.dumps(
            {
                "smoke": "passed" if ok else "failed",
                "model": holder.card.name,
                "version": holder.card.version,
                "checks": checks,
            }
        ),
        flush=True,
    )
    return 0 if ok else 1


def healthcheck(settings: ServiceSettings) -> int:
    """For Docker's HEALTHCHECK: healthy once the model is ready."""
    try:
        status, _ = _call(settings.port, "GET", "/ready")
    except OSError:
        return 1
    return 0 if status == 200 else 1


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    settings = ServiceSettings.from_env()
    if command == "serve":
        return serve(settings)
    if command == "smoke":
        timeout = float(argv[1]) if len(argv) > 1 else 120.0
        started = time.perf_counter()
        code = smoke(settings, timeout)
        log(f"smoke finished in {time.perf_counter() - started:.2f}s")
        return code
    if command == "healthcheck":
        return healthcheck(settings)
    print(f"unknown command {command!r}; use serve, smoke [ready-timeout-seconds] or healthcheck", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
