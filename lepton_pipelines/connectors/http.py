"""Paginated JSON APIs over HTTP(S).

One partition is one walk through the pages of one query: ``params`` (and the URL) may use ``{date}``,
``{start}`` and ``{end}`` from the partition window. Transient failures — connection errors, timeouts,
HTTP 5xx and 429 — are retried with exponential backoff and jitter (``Retry-After`` wins when the
server sends it; the policy is ``base.transient_retries``); other 4xx answers fail at once, because retrying a bad
request only hides it.

The auth header is read from the environment variable named in ``auth_header_env`` at fetch time, sent
only as a request header, and scrubbed from every error message: it never reaches logs, metadata or
the landed records.

Records: each item of the list at ``records_path`` is one record, flattened one level
(``{"customer": {"id": 7}}`` → ``customer__id``; deeper objects and lists land as JSON text) — except
where the source declares otherwise (see ``RecordShape``): a ``json`` column keeps its nested value
whole, a ``decimal(p, s)`` column gets the exact number as ``Decimal``. ``_source_file`` is the
requested URL including its page/cursor parameters, ``_source_line`` the item's 1-based position in
that page. A window with no records is reported in ``FetchResult.empty``, not as a schema.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

import pandas as pd
from pydantic import Field, model_validator

if TYPE_CHECKING:  # requests is imported by the fetching step, not at definitions load
    import requests

from lepton_pipelines.connectors.base import (
    LINEAGE_COLUMNS,
    SOURCE_FILE,
    SOURCE_LINE,
    Connector,
    ConnectorError,
    ConnectorSettings,
    ConnectorTimeoutError,
    FetchRequest,
    FetchResult,
    RecordShape,
    landed_schema_of_records,
    register_connector,
    rejects_frame,
    transient_retries,
)
from lepton_pipelines.connectors.redact import Redactor

ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{(date|start|end)\}")
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class HttpSettings(ConnectorSettings):
    """``connector:`` block of an HTTP source. Secrets never go here: use ``auth_header_env``."""

    type: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records_path: str | None = None  # dot path to the list of records; None: the body is the list
    pagination: Literal["none", "page", "cursor", "link"] = "none"
    page_param: str = "page"
    first_page: int = 1
    page_size_param: str | None = "page_size"
    page_size: int = Field(default=100, ge=1)
    cursor_param: str = "cursor"
    next_cursor_path: str | None = None
    next_url_path: str | None = None  # link pagination: body field with the next URL; else the Link header
    timeout_seconds: float = Field(default=30.0, gt=0)
    retries: int = Field(default=4, ge=0)
    backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=60.0, ge=0)
    auth_header_env: str | None = Field(default=None, pattern=ENV_VAR_PATTERN)
    auth_header_name: str = "Authorization"
    max_pages: int = Field(default=10_000, ge=1)
    flatten_separator: str = "__"

    @model_validator(mode="after")
    def _consistent(self) -> HttpSettings:
        if self.pagination == "cursor" and not self.next_cursor_path:
            raise ValueError("pagination: cursor needs next_cursor_path (dot path to the next cursor in the body)")
        secret_like = {self.auth_header_name.lower(), "authorization", "x-api-key", "cookie"}
        for name in self.headers:
            if name.lower() in secret_like:
                raise ValueError(
                    f"headers: {name!r} carries a secret; put its full value in an environment variable and "
                    f"name it in auth_header_env (with auth_header_name: {name})"
                )
        return self


@register_connector
class HttpConnector(Connector):
    type = "http"
    Settings = HttpSettings
    settings: HttpSettings

    def fetch(self, request: FetchRequest) -> FetchResult:
        s = self.settings
        values = _window_values(request)
        url = _fill(s.url, values, "url", request.source)
        params = {
            k: _fill(v, values, f"params.{k}", request.source) if isinstance(v, str) else v for k, v in s.params.items()
        }
        secret = self._auth_value()
        headers = {"Accept": "application/json", **s.headers}
        if secret is not None:
            headers[s.auth_header_name] = secret
        redact = Redactor([secret], header_names=[s.auth_header_name])
        shape = RecordShape.declared(request.column_types, s.flatten_separator)

        records: list[dict[str, Any]] = []
        rejects: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        page, cursor, next_url = s.first_page, None, None
        import requests

        with requests.Session() as session:
            session.headers.update(headers)
            for _ in range(s.max_pages):
                query: dict[str, Any] | None = dict(params)
                if s.pagination == "page":
                    query[s.page_param] = page
                    if s.page_size_param:
                        query[s.page_size_param] = s.page_size
                if cursor is not None:
                    query[s.cursor_param] = cursor
                target = next_url or url
                response = self._request(session, target, None if next_url else query, redact)
                where = redact.url(response.url)
                payload = _json_body(response, where, redact, shape.exact_numbers)
                items = _records_at(payload, s.records_path, where, redact)
                for index, item in enumerate(items, start=1):
                    if isinstance(item, dict):
                        records.append({**shape.record(item), SOURCE_FILE: where, SOURCE_LINE: index})
                    else:
                        rejects.append(
                            {
                                "source_file": where,
                                "source_line": index,
                                "reason": f"expected a JSON object, found {type(item).__name__}",
                                "raw": redact.text(json.dumps(item, ensure_ascii=False, default=str)),
                            }
                        )
                inputs.append(
                    {
                        "path": where,
                        "bytes": len(response.content),
                        "rows": len(items),
                        "status": response.status_code,
                        "etag": response.headers.get("ETag"),
                    }
                )
                if s.pagination == "none" or not items:
                    break
                if s.pagination == "page":
                    page += 1
                elif s.pagination == "cursor":
                    cursor = _at_path(payload, s.next_cursor_path)
                    if cursor in (None, ""):
                        break
                else:
                    link = (
                        _at_path(payload, s.next_url_path)
                        if s.next_url_path
                        else response.links.get("next", {}).get("url")
                    )
                    if not link:
                        break
                    next_url = urljoin(response.url, link)
            else:
                raise redact.fail(
                    f"{redact.url(url)}: still more pages after max_pages={s.max_pages}; raise connector.max_pages "
                    f"or narrow the query — stopping instead of landing a partial partition"
                )
        frame = pd.DataFrame(records, dtype=object)
        if frame.empty:
            frame = pd.DataFrame(columns=list(LINEAGE_COLUMNS))
        frame = frame[[c for c in frame.columns if c not in LINEAGE_COLUMNS] + list(LINEAGE_COLUMNS)]
        empty = None
        if not records and not rejects:
            scope = f"the partition window {values['start']} to {values['end']}" if values else "the answer"
            empty = f"no records in {scope} ({redact.url(url)}, {len(inputs)} page(s))"
        return FetchResult(
            records=frame,
            rejects=rejects_frame(rejects),
            inputs=inputs,
            keyed_records=True,
            landed_schema={} if empty else landed_schema_of_records(frame),
            empty=empty,
        )

    def _auth_value(self) -> str | None:
        name = self.settings.auth_header_env
        if name is None:
            return None
        value = os.environ.get(name)
        if not value:
            raise ConnectorError(
                f"{Redactor().url(self.settings.url)}: environment variable {name} (auth_header_env) is not set; "
                f"set it to the full {self.settings.auth_header_name} header value, e.g. 'Bearer <token>'"
            )
        return value

    def _request(
        self, session: requests.Session, url: str, params: dict[str, Any] | None, redact: Redactor
    ) -> requests.Response:
        s = self.settings
        policy = transient_retries(
            s.retries, s.backoff_seconds, s.max_backoff_seconds, lambda e: isinstance(e, _Transient)
        )
        try:
            return policy(self._attempt, session, url, params, redact)
        except _Transient as failed:
            error = redact.fail(
                f"{s.method} {redact.url(_with_params(url, params))}: {failed} (gave up after "
                f"{policy.statistics['attempt_number']} attempts; connector.retries={s.retries})",
                failed.cause,
                kind=ConnectorTimeoutError if failed.timed_out else None,
            )
            raise error from error.__cause__  # the redacted stand-in, never the raw exception

    def _attempt(
        self, session: requests.Session, url: str, params: dict[str, Any] | None, redact: Redactor
    ) -> requests.Response:
        """One request, body included (a body that breaks off is retried like a dropped connection).
        Failures a retry may cure raise ``_Transient``; anything else fails at once."""
        import requests

        s = self.settings
        try:
            response = session.request(s.method, url, params=params, timeout=s.timeout_seconds)
        except requests.Timeout as exc:
            raise _Transient(f"no answer within timeout_seconds={s.timeout_seconds:g}", exc, timed_out=True) from None
        except requests.ConnectionError as exc:
            raise _Transient(f"connection failed: {_connection_reason(exc)}", exc) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _Transient(f"the answer broke off while it was read ({type(exc).__name__})", exc) from None
        except requests.RequestException as exc:  # invalid URL, too many redirects, ...: a retry cannot help
            error = redact.fail(f"{s.method} {redact.url(_with_params(url, params))}: {redact.describe(exc)}", exc)
            raise error from error.__cause__
        if response.status_code < 400:
            return response
        failure = f"HTTP {response.status_code} {response.reason}: {redact.excerpt(response.text, 300)}"
        if response.status_code not in RETRYABLE_STATUS:
            raise redact.fail(f"{s.method} {redact.url(response.url)}: {failure}")
        raise _Transient(failure, retry_after=_retry_after_seconds(response.headers.get("Retry-After")))


class _Transient(Exception):
    """One attempt's failure that a retry may cure. The text is already redacted; ``cause`` is the raw
    library exception (only ever chained through ``Redactor.fail``)."""

    def __init__(
        self,
        failure: str,
        cause: BaseException | None = None,
        *,
        timed_out: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(failure)
        self.cause, self.timed_out, self.retry_after = cause, timed_out, retry_after


_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


def _connection_reason(exc: requests.ConnectionError) -> str:
    """The socket-level reason (``[Errno 111] Connection refused``) without urllib3's pool/URL wrapping."""
    found = _ERRNO.findall(str(exc))
    return found[-1].strip() if found else type(exc).__name__


def _window_values(request: FetchRequest) -> dict[str, str]:
    window = request.window
    if window is None:
        return {}
    start, end = window
    return {"date": request.partition_key or "", "start": start.isoformat(), "end": end.isoformat()}


def _fill(template: str, values: dict[str, str], field: str, source: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ConnectorError(
                f"source {source!r}: connector.{field} uses {{{match.group(1)}}} but the source is not partitioned "
                f"(no partition window); remove the placeholder or set partitioning: daily"
            )
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, template)


def _with_params(url: str, params: dict[str, Any] | None) -> str:
    import requests

    try:
        return requests.Request("GET", url, params=params).prepare().url or url
    except requests.RequestException:  # the URL itself is what is wrong: quote it as configured
        return url


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3), parsed by urllib3; None when absent
    or unreadable (the exponential backoff applies then)."""
    if not value:
        return None
    from urllib3.exceptions import InvalidHeader
    from urllib3.util import Retry

    try:
        return float(Retry().parse_retry_after(value))
    except InvalidHeader:
        return None


def _json_body(response: requests.Response, where: str, redact: Redactor, exact_numbers: bool) -> Any:
    try:
        return response.json(parse_float=Decimal) if exact_numbers else response.json()
    except ValueError as exc:
        # The body may echo the request (auth header included): it is quoted only through the redactor.
        error = redact.fail(
            f"{where}: HTTP {response.status_code} answer is not JSON ({exc}); "
            f"starts with {redact.excerpt(response.text, 120)!r}",
            exc,
        )
        raise error from error.__cause__


def _at_path(payload: Any, path: str | None) -> Any:
    value = payload
    for key in path.split(".") if path else []:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _records_at(payload: Any, path: str | None, where: str, redact: Redactor) -> list[Any]:
    items = _at_path(payload, path)
    if items is None and path is not None:
        keys = ", ".join(sorted(payload)) if isinstance(payload, dict) else type(payload).__name__
        raise redact.fail(f"{where}: records_path {path!r} not found in the answer (top-level: {keys})")
    if not isinstance(items, list):
        raise redact.fail(
            f"{where}: expected a JSON list of records at records_path {path or '(body)'!r}, found "
            f"{type(items).__name__}"
        )
    return items
