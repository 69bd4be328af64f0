"""Health gate for one replica: GET /health, then GET /ready, then a POST /predict smoke test.

The gate polls until a shared deadline because a fresh model-service needs time to load its model;
it gives up at once on a terminal answer — the container died or crash-loops, or ``/ready`` says
``"status": "failed"`` (the model could not be loaded) — since no amount of waiting fixes those. Plain
urllib with proxies disabled: the containers are on the host network, and a corporate HTTP(S)_PROXY
must never swallow a probe to 127.0.0.1.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_BODY_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class ProbeAnswer:
    ok: bool
    detail: str  # "HTTP 200", "HTTP 503: <body excerpt>", "connection refused" …
    body: bytes = b""


class ReplicaCheckFailed(Exception):
    """``check`` names the probe that failed (``GET /ready``), ``detail`` what it last saw;
    ``terminal``: it failed for a reason waiting could not fix (and did not wait for the deadline)."""

    def __init__(self, check: str, detail: str, terminal: bool = False):
        super().__init__(f"{check} failed: {detail}")
        self.check = check
        self.detail = detail
        self.terminal = terminal


def terminal_answer(answer: ProbeAnswer) -> str | None:
    """The model service's own word that it will never become ready: ``{"status": "failed", "error": …}``."""
    if answer.ok or not answer.body:
        return None
    try:
        body = json.loads(answer.body)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("status") == "failed":
        return f"model failed to load: {body.get('error') or 'no reason given'}"
    return None


def probe(method: str, url: str, timeout: float, payload: Any = None) -> ProbeAnswer:
    data = None if payload is None else json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read()
            return ProbeAnswer(ok=200 <= response.status < 300, detail=f"HTTP {response.status}", body=body)
    except urllib.error.HTTPError as error:
        body = error.read()
        excerpt = body[:_BODY_EXCERPT_CHARS].decode(errors="replace").strip()
        return ProbeAnswer(ok=False, detail=f"HTTP {error.code}" + (f": {excerpt}" if excerpt else ""), body=body)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return ProbeAnswer(ok=False, detail=f"no answer ({reason})")


def wait_until_ok(
    check: str,
    url: str,
    deadline: float,
    poll_interval: float,
    request_timeout: float,
    container_gone: Callable[[], str | None],
) -> None:
    """Poll ``GET url`` until it answers 2xx; raise if the deadline passes or the container died."""
    started = time.monotonic()
    while True:
        answer = probe("GET", url, timeout=request_timeout)
        if answer.ok:
            return
        verdict = terminal_answer(answer)
        if verdict:
            raise ReplicaCheckFailed(check, f"{verdict} ({answer.detail.split(':', 1)[0]})", terminal=True)
        death = container_gone()
        if death:
            raise ReplicaCheckFailed(check, f"{death} (last probe: {answer.detail})", terminal=True)
        if time.monotonic() >= deadline:
            waited = time.monotonic() - started
            raise ReplicaCheckFailed(check, f"not OK after {waited:.1f}s, last answer: {answer.detail}")
        time.sleep(poll_interval)


def smoke_test_predict(base_url: str, sample_rows: list[dict[str, Any]], request_timeout: float) -> None:
    """One real prediction: a service that is 'ready' but cannot score a row must not take traffic."""
    answer = probe("POST", f"{base_url}/predict", timeout=request_timeout, payload={"rows": sample_rows})
    if not answer.ok:
        raise ReplicaCheckFailed("POST /predict", answer.detail)
    try:
        json.loads(answer.body)
    except ValueError:
        excerpt = answer.body[:_BODY_EXCERPT_CHARS].decode(errors="replace")
        raise ReplicaCheckFailed("POST /predict", f"{answer.detail} but the body is not JSON: {excerpt!r}") from None


def verify_replica(
    base_url: str,
    sample_rows: list[dict[str, Any]],
    deadline: float,
    poll_interval: float,
    request_timeout: float,
    container_gone: Callable[[], str | None],
) -> None:
    for path in ("/health", "/ready"):
        wait_until_ok(f"GET {path}", f"{base_url}{path}", deadline, poll_interval, request_timeout, container_gone)
    if sample_rows:
        smoke_test_predict(base_url, sample_rows, request_timeout)
