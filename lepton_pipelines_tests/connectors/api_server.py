"""A small JSON API served by its own process, for the HTTP connector tests.

Run as ``python api_server.py``: it binds a free port on 127.0.0.1, prints ``PORT <n>`` and serves until
killed. Each route is one behaviour a real API shows (pagination styles, 429 with Retry-After, 5xx,
slow answers, a non-JSON 200 that echoes the request headers ...). Stateful routes count hits per full
path, so tests put a unique key in the path. ``GET /_log?path=<path>`` returns the requests seen for a
path (query, headers, monotonic time) so a test can assert what the connector actually sent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ITEMS = [{"id": i, "customer": {"id": 100 + i}} for i in range(1, 6)]
CURSORS = {None: ("c1", ITEMS[:2]), "c1": ("c2", ITEMS[2:4]), "c2": (None, ITEMS[4:])}
NESTED = [
    {"id": 1, "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a", "b"]},
    {"id": 2, "address": None, "tags": []},
    {"id": 3, "address": {"city": "Bergen", "geo": {"lat": 60.39, "lon": 5.32}}, "tags": None},
]
# Exact text on purpose: these numbers are not representable as binary floats.
DECIMAL_BODY = (
    b'[{"id": 1, "amount": 12345678901234567.1234, "rate": 0.1, "price": {"net": 0.30}},'
    b' {"id": 2, "amount": 7, "rate": 2.5, "price": {"net": 1.10}},'
    b' {"id": 3, "amount": null, "rate": null, "price": null}]'
)

LOG: list[dict[str, Any]] = []
LOCK = threading.Lock()


def hits(path: str) -> int:
    return sum(1 for entry in LOG if entry["path"] == path)


def route(path: str, query: dict[str, str], headers: dict[str, str], n: int) -> tuple[int, dict[str, str], Any]:
    """(status, extra headers, body) for one request; body bytes are sent as they are, else as JSON."""
    parts = path.strip("/").split("/")
    head = parts[0]
    if head == "orders":
        page, size = int(query["page"]), int(query["page_size"])
        return 200, {}, {"data": {"items": ITEMS[(page - 1) * size : page * size]}}
    if head == "c":
        nxt, items = CURSORS[query.get("after")]
        return 200, {}, {"results": items, "meta": {"next": nxt}}
    if head == "h":
        page = int(query.get("p", "1"))
        link = {"Link": f'</h?p={page + 1}>; rel="next"'} if page < 3 else {}
        return 200, link, ITEMS[page - 1 : page]
    if head == "b":
        page = int(query.get("p", "1"))
        return 200, {}, {"items": ITEMS[page - 1 : page], "links": {"next": f"/b?p={page + 1}" if page < 2 else None}}
    if head == "w":
        return 200, {}, [dict(query)]
    if head == "flaky":  # /flaky/<failures>/<key>: 500 for the first <failures> hits, then one record
        return (500, {}, {"error": "boom"}) if n <= int(parts[1]) else (200, {}, ITEMS[:1])
    if head == "down":
        return 503, {}, {"error": "maintenance"}
    if head == "limited":  # /limited/<key>
        return (429, {"Retry-After": "1"}, {"error": "slow down"}) if n == 1 else (200, {}, ITEMS[:2])
    if head == "missing":
        return 404, {}, {"error": "no such resource"}
    if head == "slow":
        time.sleep(1.0)
        return 200, {}, []
    if head == "secure":
        expected = os.environ.get("API_EXPECTED_AUTH")
        if headers.get("x-auth") != expected:
            return 401, {}, {"error": f"bad credentials {headers.get('x-auth')}"}
        return 200, {}, ITEMS[:1]
    if head == "echo":  # /echo/<status>/<kind>: answer <status> echoing every request header
        status, kind = int(parts[1]), parts[2]
        lines = "".join(f"{k}: {v}\n" for k, v in sorted(headers.items()))  # like httpbin
        if kind == "html":
            return status, {"Content-Type": "text/html"}, f"<html><pre>{lines}</pre></html>".encode()
        if kind == "items":  # a JSON list whose items are not objects: they land as rejects
            return status, {}, [lines, {"id": 1}]
        return status, {}, {"error": "echo", "request_headers": headers}
    if head == "loop":
        return 302, {"Location": path}, {}
    if head == "broken":  # /broken/<failures>/<key>: the first <failures> answers break off mid-body
        return (200, {"X-Truncate": "1"}, ITEMS) if n <= int(parts[1]) else (200, {}, ITEMS[:3])
    if head == "mixed":
        return 200, {}, {"items": [{"id": 1}, 7, {"id": 3}]}
    if head == "html":
        return 200, {"Content-Type": "text/html"}, b"<html>oops</html>"
    if head == "endless":
        return 200, {}, [{"id": n}]
    if head == "nested":
        return 200, {}, NESTED
    if head == "decimal":
        return 200, {}, DECIMAL_BODY
    if head == "empty":
        return 200, {}, {"items": []}
    return 404, {}, {"error": f"no route {path}"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/_log":
            with LOCK:
                seen = [e for e in LOG if e["path"] == query.get("path")]
            return self._send(200, {}, seen)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            LOG.append({"path": parts.path, "query": query, "headers": headers, "at": time.monotonic()})
            n = hits(parts.path)
        status, extra, body = route(parts.path, query, headers, n)
        self._send(status, extra, body)

    def _send(self, status: int, extra: dict[str, str], body: Any) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            extra = {"Content-Type": "application/json", **extra}
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if extra.get("X-Truncate"):  # promise the whole body, send half, hang up
                self.wfile.write(payload[: len(payload) // 2])
                self.close_connection = True
                return
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
