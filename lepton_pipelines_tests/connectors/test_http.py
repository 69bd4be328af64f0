"""The HTTP connector against a real HTTP server on 127.0.0.1 (pagination, retries, timeouts, auth)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from lepton_pipelines.connectors import (
    SOURCE_FILE,
    SOURCE_LINE,
    ConnectorError,
    FetchRequest,
    HttpSettings,
    build_connector,
)

pytestmark = pytest.mark.timeout(60)

SECRET = "Bearer s3cret-token-4242"
ITEMS = [{"id": i, "customer": {"id": 100 + i}} for i in range(1, 6)]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


Route = Callable[[dict[str, str], dict[str, str], int], tuple[int, dict[str, str], Any]]


@dataclass
class ApiServer:
    """A tiny programmable API: each route answers (status, headers, json body); every request is logged."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@pytest.fixture
def api():
    state = ApiServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.seen.append(Seen(parts.path, query, headers, time.monotonic()))
            route = state.routes.get(parts.path)
            status, extra, body = route(query, headers, len(state.hits(parts.path))) if route else (404, {}, {"error": "no route"})
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def fetch(partition_key: str | None = "2026-01-02", **settings):
    connector = build_connector(HttpSettings.model_validate({"type": "http", "backoff_seconds": 0.01, **settings}))
    return connector.fetch(FetchRequest(source="orders", partition_key=partition_key, lake=None))


def test_page_pagination_stops_on_empty_page_and_records_lineage(api):
    def pages(query, headers, n):
        page, size = int(query["page"]), int(query["page_size"])
        return 200, {}, {"data": {"items": ITEMS[(page - 1) * size: page * size]}}

    api.routes["/orders"] = pages
    result = fetch(url=f"{api.base}/orders", pagination="page", page_size=2, records_path="data.items")
    assert result.records["id"].tolist() == [1, 2, 3, 4, 5]
    assert result.records["customer__id"].tolist() == [101, 102, 103, 104, 105]
    assert [s.query["page"] for s in api.hits("/orders")] == ["1", "2", "3", "4"]
    assert result.records[SOURCE_FILE].tolist()[2] == f"{api.base}/orders?page=2&page_size=2"
    assert result.records[SOURCE_LINE].tolist() == [1, 2, 1, 2, 1]
    assert [i["rows"] for i in result.inputs] == [2, 2, 1, 0]
    assert result.landed_schema == {"id": "integer", "customer__id": "integer"}


def test_cursor_pagination_follows_next_cursor(api):
    chain = {None: ("c1", ITEMS[:2]), "c1": ("c2", ITEMS[2:4]), "c2": (None, ITEMS[4:])}

    def cursor(query, headers, n):
        nxt, items = chain[query.get("after")]
        return 200, {}, {"results": items, "meta": {"next": nxt}}

    api.routes["/c"] = cursor
    result = fetch(url=f"{api.base}/c", pagination="cursor", cursor_param="after",
                   next_cursor_path="meta.next", records_path="results")
    assert result.records["id"].tolist() == [1, 2, 3, 4, 5]
    assert [s.query.get("after") for s in api.hits("/c")] == [None, "c1", "c2"]
    assert result.records[SOURCE_FILE].tolist()[-1].endswith("/c?after=c2")


def test_link_pagination_with_link_header_and_with_body_url(api):
    def by_header(query, headers, n):
        page = int(query.get("p", "1"))
        link = {"Link": f'<{api.base}/h?p={page + 1}>; rel="next"'} if page < 3 else {}
        return 200, link, ITEMS[page - 1: page]

    def by_body(query, headers, n):
        page = int(query.get("p", "1"))
        return 200, {}, {"items": ITEMS[page - 1: page], "links": {"next": f"/b?p={page + 1}" if page < 2 else None}}

    api.routes["/h"], api.routes["/b"] = by_header, by_body
    assert fetch(url=f"{api.base}/h", pagination="link").records["id"].tolist() == [1, 2, 3]
    body = fetch(url=f"{api.base}/b", pagination="link", next_url_path="links.next", records_path="items")
    assert body.records["id"].tolist() == [1, 2] and len(api.hits("/b")) == 2


def test_window_placeholders_fill_params(api):
    api.routes["/w"] = lambda query, headers, n: (200, {}, [dict(query)])
    result = fetch(url=f"{api.base}/w", params={"day": "{date}", "from": "{start}", "to": "{end}", "limit": 5})
    row = result.records.iloc[0]
    assert row["day"] == "2026-01-02" and row["limit"] == "5"
    assert row["from"] == "2026-01-02T00:00:00+00:00" and row["to"] == "2026-01-03T00:00:00+00:00"
    with pytest.raises(ConnectorError, match=r"params.day uses \{date\} but the source is not partitioned"):
        fetch(partition_key=None, url=f"{api.base}/w", params={"day": "{date}"})


def test_retries_after_500_until_success(api):
    api.routes["/flaky"] = lambda q, h, n: (500, {}, {"error": "boom"}) if n <= 2 else (200, {}, ITEMS[:1])
    result = fetch(url=f"{api.base}/flaky", retries=3)
    assert result.records["id"].tolist() == [1]
    assert len(api.hits("/flaky")) == 3


def test_gives_up_after_retries_naming_the_url_and_status(api):
    api.routes["/down"] = lambda q, h, n: (503, {}, {"error": "maintenance"})
    with pytest.raises(ConnectorError, match=r"GET http://127\.0\.0\.1:\d+/down\?x=1: HTTP 503 .*gave up after 3 attempts"):
        fetch(url=f"{api.base}/down", params={"x": 1}, retries=2)
    assert len(api.hits("/down")) == 3


def test_429_honours_retry_after(api):
    api.routes["/limited"] = lambda q, h, n: (429, {"Retry-After": "1"}, {}) if n == 1 else (200, {}, ITEMS[:2])
    result = fetch(url=f"{api.base}/limited", retries=2)
    first, second = api.hits("/limited")
    assert result.records["id"].tolist() == [1, 2]
    assert second.at - first.at >= 0.9  # waited as told, not the 10 ms exponential backoff


def test_client_errors_are_not_retried(api):
    api.routes["/missing"] = lambda q, h, n: (404, {}, {"error": "no such resource"})
    with pytest.raises(ConnectorError, match=r"/missing: HTTP 404 Not Found: .*no such resource"):
        fetch(url=f"{api.base}/missing", retries=3)
    assert len(api.hits("/missing")) == 1


def test_timeout_is_retried_then_reported(api):
    def slow(q, h, n):
        time.sleep(1.0)
        return 200, {}, []

    api.routes["/slow"] = slow
    with pytest.raises(ConnectorError, match=r"/slow: no answer within timeout_seconds=0\.2 .*after 2 attempts"):
        fetch(url=f"{api.base}/slow", timeout_seconds=0.2, retries=1)
    assert len(api.hits("/slow")) == 2


def test_auth_header_comes_from_env_and_never_appears_in_errors_or_results(api, monkeypatch):
    def guarded(q, headers, n):
        if headers.get("x-auth") != SECRET:
            return 401, {}, {"error": f"bad credentials {headers.get('x-auth')}"}
        return 200, {}, ITEMS[:1]

    api.routes["/secure"] = guarded
    settings = {"url": f"{api.base}/secure", "auth_header_env": "ORDERS_API_AUTH", "auth_header_name": "X-Auth"}
    monkeypatch.delenv("ORDERS_API_AUTH", raising=False)
    with pytest.raises(ConnectorError, match="environment variable ORDERS_API_AUTH .* is not set"):
        fetch(**settings)

    monkeypatch.setenv("ORDERS_API_AUTH", SECRET)
    result = fetch(**settings)
    assert result.records["id"].tolist() == [1] and api.hits("/secure")[-1].headers["x-auth"] == SECRET
    assert "s3cret" not in repr(result.records.to_dict()) + repr(result.inputs) + repr(result.landed_schema)

    monkeypatch.setenv("ORDERS_API_AUTH", "Bearer wrong-token-9999")
    with pytest.raises(ConnectorError) as failure:
        fetch(**settings)
    message = str(failure.value)
    assert "HTTP 401" in message and "/secure" in message and "wrong-token-9999" not in message and "***" in message


def test_secret_headers_in_yaml_are_refused():
    with pytest.raises(ValueError, match="auth_header_env"):
        HttpSettings.model_validate({"type": "http", "url": "http://x", "headers": {"Authorization": "Bearer x"}})


def test_non_object_items_are_rejected_and_bad_bodies_name_the_url(api):
    api.routes["/mixed"] = lambda q, h, n: (200, {}, {"items": [{"id": 1}, 7, {"id": 3}]})
    api.routes["/html"] = lambda q, h, n: (200, {}, b"<html>oops</html>")
    result = fetch(url=f"{api.base}/mixed", records_path="items")
    assert result.records["id"].tolist() == [1, 3] and result.records[SOURCE_LINE].tolist() == [1, 3]
    [reject] = result.rejects.to_dict("records")
    assert reject["source_line"] == 2 and reject["raw"] == "7" and "found int" in reject["reason"]
    with pytest.raises(ConnectorError, match=r"/html: HTTP 200 answer is not JSON"):
        fetch(url=f"{api.base}/html")
    with pytest.raises(ConnectorError, match=r"records_path 'data' not found in the answer \(top-level: items\)"):
        fetch(url=f"{api.base}/mixed", records_path="data")


def test_max_pages_stops_instead_of_landing_a_partial_partition(api):
    api.routes["/endless"] = lambda q, h, n: (200, {}, [{"id": n}])
    with pytest.raises(ConnectorError, match="max_pages=3"):
        fetch(url=f"{api.base}/endless", pagination="page", max_pages=3)
    assert len(api.hits("/endless")) == 3
