"""The HTTP connector against a real HTTP server process on 127.0.0.1 (``api_server.py``): pagination,
retries, timeouts, auth and redaction, nested and exact values, empty windows."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pandas as pd
import pytest

from lepton_pipelines.connectors import (
    SOURCE_FILE,
    SOURCE_LINE,
    ConnectorError,
    ConnectorTimeoutError,
    FetchRequest,
    HttpSettings,
    build_connector,
)

from .conftest import API_SECRET

pytestmark = pytest.mark.timeout(60)


def fetch(partition_key: str | None = "2026-01-02", column_types: dict[str, str] | None = None, **settings):
    connector = build_connector(HttpSettings.model_validate({"type": "http", "backoff_seconds": 0.01, **settings}))
    return connector.fetch(
        FetchRequest(
            source="orders",
            partition_key=partition_key,
            lake=None,
            columns=tuple(column_types or ()),
            column_types=column_types or {},
        )
    )


def key() -> str:
    return uuid.uuid4().hex[:10]


def test_page_pagination_stops_on_empty_page_and_records_lineage(api):
    result = fetch(url=f"{api.base}/orders", pagination="page", page_size=2, records_path="data.items")
    assert result.records["id"].tolist() == [1, 2, 3, 4, 5]
    assert result.records["customer__id"].tolist() == [101, 102, 103, 104, 105]
    assert [s["query"]["page"] for s in api.hits("/orders")][-4:] == ["1", "2", "3", "4"]
    assert result.records[SOURCE_FILE].tolist()[2] == f"{api.base}/orders?page=2&page_size=2"
    assert result.records[SOURCE_LINE].tolist() == [1, 2, 1, 2, 1]
    assert [i["rows"] for i in result.inputs] == [2, 2, 1, 0]
    assert result.landed_schema == {"id": "integer", "customer__id": "integer"} and result.empty is None


def test_cursor_pagination_follows_next_cursor(api):
    result = fetch(
        url=f"{api.base}/c",
        pagination="cursor",
        cursor_param="after",
        next_cursor_path="meta.next",
        records_path="results",
    )
    assert result.records["id"].tolist() == [1, 2, 3, 4, 5]
    assert [s["query"].get("after") for s in api.hits("/c")][-3:] == [None, "c1", "c2"]
    assert result.records[SOURCE_FILE].tolist()[-1].endswith("/c?after=c2")


def test_link_pagination_with_link_header_and_with_body_url(api):
    assert fetch(url=f"{api.base}/h", pagination="link").records["id"].tolist() == [1, 2, 3]
    body = fetch(url=f"{api.base}/b", pagination="link", next_url_path="links.next", records_path="items")
    assert body.records["id"].tolist() == [1, 2] and body.records[SOURCE_FILE].tolist()[-1] == f"{api.base}/b?p=2"


def test_window_placeholders_fill_params(api):
    result = fetch(url=f"{api.base}/w", params={"day": "{date}", "from": "{start}", "to": "{end}", "limit": 5})
    row = result.records.iloc[0]
    assert row["day"] == "2026-01-02" and row["limit"] == "5"
    assert row["from"] == "2026-01-02T00:00:00+00:00" and row["to"] == "2026-01-03T00:00:00+00:00"
    with pytest.raises(ConnectorError, match=r"params.day uses \{date\} but the source is not partitioned"):
        fetch(partition_key=None, url=f"{api.base}/w", params={"day": "{date}"})


def test_retries_after_500_until_success(api):
    path = f"/flaky/2/{key()}"
    result = fetch(url=f"{api.base}{path}", retries=3)
    assert result.records["id"].tolist() == [1]
    assert len(api.hits(path)) == 3


def test_gives_up_after_retries_naming_the_url_and_status(api):
    before = len(api.hits("/down"))
    with pytest.raises(
        ConnectorError, match=r"GET http://127\.0\.0\.1:\d+/down\?x=1: HTTP 503 .*gave up after 3 attempts"
    ):
        fetch(url=f"{api.base}/down", params={"x": 1}, retries=2)
    assert len(api.hits("/down")) - before == 3


def test_429_honours_retry_after(api):
    path = f"/limited/{key()}"
    result = fetch(url=f"{api.base}{path}", retries=2)
    first, second = api.hits(path)
    assert result.records["id"].tolist() == [1, 2]
    assert second["at"] - first["at"] >= 0.9  # waited as told, not the 10 ms exponential backoff


def test_client_errors_are_not_retried(api):
    before = len(api.hits("/missing"))
    with pytest.raises(ConnectorError, match=r"/missing: HTTP 404 Not Found: .*no such resource"):
        fetch(url=f"{api.base}/missing", retries=3)
    assert len(api.hits("/missing")) - before == 1


def test_timeout_is_retried_then_reported(api):
    before = len(api.hits("/slow"))
    with pytest.raises(ConnectorTimeoutError, match=r"/slow: no answer within timeout_seconds=0\.2 .*after 2 attempts"):
        fetch(url=f"{api.base}/slow", timeout_seconds=0.2, retries=1)
    assert len(api.hits("/slow")) - before == 2


def test_connection_refused_names_the_socket_error_not_the_pool(api):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectorError) as failure:
        fetch(url=f"http://127.0.0.1:{port}/x", retries=1)
    assert str(failure.value) == (
        f"GET http://127.0.0.1:{port}/x: connection failed: [Errno 111] Connection refused "
        f"(gave up after 2 attempts; connector.retries=1)"
    )
    assert "RedactedError" in type(failure.value.__cause__).__name__ and "ConnectionError" in str(
        failure.value.__cause__
    )


def test_an_answer_that_breaks_off_is_retried(api):
    path = f"/broken/1/{key()}"
    result = fetch(url=f"{api.base}{path}", retries=2)
    assert result.records["id"].tolist() == [1, 2, 3] and len(api.hits(path)) == 2
    with pytest.raises(
        ConnectorError,
        match=r"/broken/9/\w+: the answer broke off while it was read "
        r"\(ChunkedEncodingError\) \(gave up after 2 attempts; connector.retries=1\)$",
    ):
        fetch(url=f"{api.base}/broken/9/{key()}", retries=1)


def test_a_redirect_loop_fails_at_once_naming_the_url(api):
    with pytest.raises(
        ConnectorError, match=r"^GET http://127\.0\.0\.1:\d+/loop\?x=1: TooManyRedirects: Exceeded 30 redirects\.$"
    ):
        fetch(url=f"{api.base}/loop", params={"x": 1}, retries=3)


def test_auth_header_comes_from_env_and_never_appears_in_errors_or_results(api, monkeypatch):
    settings = {"url": f"{api.base}/secure", "auth_header_env": "ORDERS_API_AUTH", "auth_header_name": "X-Auth"}
    monkeypatch.delenv("ORDERS_API_AUTH", raising=False)
    with pytest.raises(ConnectorError, match="environment variable ORDERS_API_AUTH .* is not set"):
        fetch(**settings)

    monkeypatch.setenv("ORDERS_API_AUTH", API_SECRET)
    result = fetch(**settings)
    assert result.records["id"].tolist() == [1] and api.hits("/secure")[-1]["headers"]["x-auth"] == API_SECRET
    assert "s3cret" not in repr(result.records.to_dict()) + repr(result.inputs) + repr(result.landed_schema)

    monkeypatch.setenv("ORDERS_API_AUTH", "Bearer wrong-token-9999")
    with pytest.raises(ConnectorError) as failure:
        fetch(**settings)
    message = str(failure.value)
    assert api.hits("/secure")[-1]["headers"]["x-auth"] == "Bearer wrong-token-9999"  # the server did echo it
    assert "HTTP 401" in message and "/secure" in message and "wrong-token-9999" not in message and "***" in message


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/echo/200/html", r"HTTP 200 answer is not JSON \(.*\); starts with '<html><pre>.*authorization: \*\*\*"),
        ("/echo/401/json", r"HTTP 401 Unauthorized: .*\"authorization\": \"\*\*\*\""),
        (
            "/echo/500/json",
            r"HTTP 500 Internal Server Error: .*\"authorization\": \"\*\*\*\".*gave up after 2 attempts",
        ),
    ],
)
def test_an_echoed_auth_header_is_redacted_in_every_error_and_its_cause(api, monkeypatch, path, expected):
    monkeypatch.setenv("ORDERS_API_AUTH", "Bearer echo-me-31337")
    with pytest.raises(ConnectorError, match=expected) as failure:
        fetch(url=f"{api.base}{path}", auth_header_env="ORDERS_API_AUTH", retries=1)
    assert api.hits(path)[-1]["headers"]["authorization"] == "Bearer echo-me-31337"
    chain, error = [], failure.value
    while error is not None:
        chain.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert "echo-me-31337" not in "\n".join(chain)


def test_rejected_items_that_echo_the_secret_are_redacted_before_quarantine(api, monkeypatch):
    monkeypatch.setenv("ORDERS_API_AUTH", "Bearer echo-me-31337")
    result = fetch(url=f"{api.base}/echo/200/items", auth_header_env="ORDERS_API_AUTH")
    [reject] = result.rejects.to_dict("records")
    assert "authorization: ***" in reject["raw"] and "echo-me-31337" not in reject["raw"]
    assert result.records["id"].tolist() == [1]


def test_secret_headers_in_yaml_are_refused():
    with pytest.raises(ValueError, match="auth_header_env"):
        HttpSettings.model_validate({"type": "http", "url": "http://x", "headers": {"Authorization": "Bearer x"}})


def test_non_object_items_are_rejected_and_bad_bodies_name_the_url(api):
    result = fetch(url=f"{api.base}/mixed", records_path="items")
    assert result.records["id"].tolist() == [1, 3] and result.records[SOURCE_LINE].tolist() == [1, 3]
    [reject] = result.rejects.to_dict("records")
    assert reject["source_line"] == 2 and reject["raw"] == "7" and "found int" in reject["reason"]
    with pytest.raises(
        ConnectorError,
        match=r"/html: HTTP 200 answer is not JSON \(Expecting value: line 1 column 1 "
        r"\(char 0\)\); starts with '<html>oops</html>'",
    ):
        fetch(url=f"{api.base}/html")
    with pytest.raises(ConnectorError, match=r"records_path 'data' not found in the answer \(top-level: items\)"):
        fetch(url=f"{api.base}/mixed", records_path="data")


def test_max_pages_stops_instead_of_landing_a_partial_partition(api):
    before = len(api.hits("/endless"))
    with pytest.raises(ConnectorError, match="max_pages=3"):
        fetch(url=f"{api.base}/endless", pagination="page", max_pages=3)
    assert len(api.hits("/endless")) - before == 3


def test_undeclared_nested_objects_flatten_and_a_null_wrapper_is_not_a_column(api):
    flat = fetch(url=f"{api.base}/nested", column_types={"id": "integer", "address__city": "string", "tags": "string"})
    assert "address" not in flat.records.columns  # record 2 has address: null — not a new column, no drift
    assert flat.records["address__city"].tolist()[0] == "Oslo" and pd.isna(flat.records["address__city"].tolist()[1])
    assert flat.records["address__geo"].tolist()[2] == '{"lat": 60.39, "lon": 5.32}'
    assert flat.records["tags"].tolist()[:2] == ['["a", "b"]', "[]"]


def test_json_columns_keep_nested_values_whole_and_nullable(api):
    result = fetch(url=f"{api.base}/nested", column_types={"id": "integer", "address": "json", "tags": "json"})
    records = result.records
    assert [c for c in records.columns if not c.startswith("_")] == ["id", "address", "tags"]
    assert records["address"].tolist() == [
        {"city": "Oslo", "zip": "0150"},
        None,
        {"city": "Bergen", "geo": {"lat": 60.39, "lon": 5.32}},
    ]
    assert records["tags"].tolist() == [["a", "b"], [], None]
    assert result.landed_schema == {"id": "integer", "address": "json", "tags": "json"}


def test_decimal_columns_arrive_exact_and_other_numbers_stay_float(api):
    result = fetch(
        url=f"{api.base}/decimal",
        column_types={"id": "integer", "amount": "decimal(38, 4)", "rate": "float", "price__net": "decimal(10,2)"},
    )
    records = result.records
    assert records["amount"].tolist()[:2] == [Decimal("12345678901234567.1234"), Decimal(7)]
    assert all(isinstance(v, Decimal) for v in records["amount"].tolist()[:2]) and records["amount"].tolist()[2] is None
    assert records["price__net"].tolist()[:2] == [Decimal("0.30"), Decimal("1.10")]
    assert str(records["price__net"].tolist()[0]) == "0.30"  # the text as sent, scale included
    assert records["rate"].tolist()[:2] == [0.1, 2.5] and type(records["rate"].tolist()[0]) is float
    assert "price" not in records.columns
    assert result.landed_schema == {"id": "integer", "amount": "decimal", "rate": "float", "price__net": "decimal"}
    undeclared = fetch(url=f"{api.base}/decimal")  # without the declaration JSON numbers are floats, as before
    assert (
        undeclared.records["amount"].tolist()[0] == 12345678901234567.1234
        and undeclared.landed_schema["amount"] == "float"
    )


def test_an_empty_window_is_an_outcome_not_a_schema(api):
    result = fetch(url=f"{api.base}/empty", records_path="items")
    assert result.records.empty and result.landed_schema == {}
    assert result.empty == (
        f"no records in the partition window 2026-01-02T00:00:00+00:00 to "
        f"2026-01-03T00:00:00+00:00 ({api.base}/empty, 1 page(s))"
    )
    unpartitioned = fetch(partition_key=None, url=f"{api.base}/empty", records_path="items")
    assert unpartitioned.empty == f"no records in the answer ({api.base}/empty, 1 page(s))"
    mixed = fetch(url=f"{api.base}/mixed", records_path="items")
    assert mixed.empty is None
