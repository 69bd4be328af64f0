"""SQL databases through SQLAlchemy.

The connection URL lives only in the environment variable named by ``url_env`` (it usually holds a
password), never in YAML; errors name that variable and the query, and go through the connector
redactor (the URL, its password in every spelling, and anything shaped like a credential are masked).
The query binds the partition window as ``:start`` / ``:end`` (timezone-aware UTC datetimes, half-open)
or ``:date`` (a ``datetime.date``). Rows are streamed with a server-side cursor in ``chunksize`` batches
so the database driver never buffers the whole result; values land as the driver returns them (native
Python types in object columns, so an integer column with NULLs stays integers and ``numeric(p, s)``
stays ``Decimal`` — exact, never float).

Left unattended, a run must neither hang nor give up on a blip:

- ``connect_timeout`` (default 10s) bounds connecting, including a server that accepts the TCP
  connection and then never answers; ``statement_timeout`` (default 300s) makes the database cancel a
  statement that runs too long (the query, and each chunk fetched from its cursor). Both are applied
  for PostgreSQL through psycopg2/psycopg (libpq ``connect_timeout`` — which libpq rounds up to at
  least 2s — and ``SET statement_timeout``) and SQLite (a progress handler interrupts the statement);
  other drivers keep their own defaults, and setting either explicitly for them is an error rather
  than a silently ignored line.
- Transient connection failures (refused, reset, timed out, "the database system is starting up",
  too many clients) are retried ``retries`` times with exponential backoff and jitter, as HTTP is;
  query errors, authentication failures and a missing database fail at once.

An empty result is reported in ``FetchResult.empty`` ("no rows in the partition window ..."), with an
empty landed schema, so a quiet day never reads as every column drifting to null.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import Field

from lepton_pipelines.connectors.base import (
    SOURCE_FILE,
    SOURCE_LINE,
    Connector,
    ConnectorError,
    ConnectorSettings,
    ConnectorTimeoutError,
    FetchRequest,
    FetchResult,
    Seconds,
    landed_schema_of_records,
    register_connector,
    seconds_text,
    transient_retries,
)
from lepton_pipelines.connectors.http import ENV_VAR_PATTERN
from lepton_pipelines.connectors.redact import Redactor

if TYPE_CHECKING:  # annotations only: SQLAlchemy is imported by the step that queries
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.exc import DBAPIError

WINDOW_PARAMETERS = ("start", "end", "date")
# (dialect, driver) pairs whose timeouts we know how to set; None: any driver of that dialect.
TIMEOUT_DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "sqlite": None}

# SQLSTATEs a retry may cure: connection exceptions, server shutting down / starting up, too many clients.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")
_STATEMENT_TIMEOUT_SQLSTATE = "57014"  # query_canceled (PostgreSQL)
# libpq reports connect-time failures without a SQLSTATE: these texts are the ones worth retrying.
_TRANSIENT_CONNECT_TEXT = (
    "connection refused",
    "timeout expired",
    "timed out",
    "server closed the connection unexpectedly",
    "connection reset",
    "could not connect",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
    "could not receive data",
    "could not send data",
    "terminating connection",
    "ssl syscall error",
    "eof detected",
)


class SqlSettings(ConnectorSettings):
    """``connector:`` block of a SQL source."""

    type: Literal["sql"] = "sql"
    url_env: str = Field(pattern=ENV_VAR_PATTERN)
    query: str = Field(min_length=1)
    chunksize: int = Field(default=50_000, ge=1)
    connect_timeout: Seconds = 10.0  # `10s`, `1m`, ...
    statement_timeout: Seconds = 300.0
    retries: int = Field(default=3, ge=0)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)


class _AttemptFailed(Exception):
    """One attempt's database error, classified: which timeout fired (if any), and whether to retry."""

    def __init__(self, cause: DBAPIError, connected: bool):
        super().__init__(type(cause).__name__)  # the raw driver text stays only in the redacted stand-in
        self.cause = cause
        self.timeout = _timeout_setting(cause, connected)
        self.transient = self.timeout == "connect_timeout" or _is_transient(cause, connected)


@register_connector
class SqlConnector(Connector):
    type = "sql"
    Settings = SqlSettings
    settings: SqlSettings

    @property
    def lineage_name(self) -> str:
        return f"sql:{self.settings.url_env}"

    def fetch(self, request: FetchRequest) -> FetchResult:
        # SQLAlchemy is imported by the step that queries, not at definitions load (~0.25 s per process).
        from sqlalchemy import text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        s = self.settings
        statement = text(s.query)
        params = self._bind_values(request, set(statement.compile().params))
        raw_url = self._url()
        url = make_url(raw_url)
        redact = Redactor([raw_url, url.password and str(url.password), url.render_as_string(hide_password=False)])
        timeouts = self._timeouts_for(url, redact)
        policy = transient_retries(
            s.retries, s.backoff_seconds, s.max_backoff_seconds, lambda e: isinstance(e, _AttemptFailed) and e.transient
        )
        try:
            columns, chunks = policy(self._read, url, statement, params, timeouts is not None)
        # redact.fail() chains a redacted stand-in of the cause; `from error.__cause__` keeps exactly that chain
        except SQLAlchemyError as exc:  # not a driver error (e.g. a missing dialect): never retried
            error = redact.fail(f"{self._where()}: {redact.describe(exc)}", exc)
            raise error from error.__cause__
        except ImportError as exc:
            error = redact.fail(
                f"{self._where()}: the database driver for {url.drivername!r} is not installed ({exc}); "
                f"install it in the code location's image",
                exc,
            )
            raise error from error.__cause__
        except _AttemptFailed as failed:
            reason = _describe(redact, failed.cause)
            gave_up = f"(gave up after {policy.statistics['attempt_number']} attempts; connector.retries={s.retries})"
            if failed.timeout == "statement_timeout":
                error = redact.fail(
                    f"{self._where()}: the query ran longer than statement_timeout="
                    f"{seconds_text(s.statement_timeout)} "
                    f"and the database cancelled it ({reason}); raise connector.statement_timeout or narrow the "
                    f"query",
                    failed.cause,
                    kind=ConnectorTimeoutError,
                )
            elif failed.timeout == "connect_timeout":
                error = redact.fail(
                    f"{self._where()}: no answer from the database within connect_timeout="
                    f"{seconds_text(s.connect_timeout)} ({reason}) {gave_up}",
                    failed.cause,
                    kind=ConnectorTimeoutError,
                )
            elif not failed.transient:
                error = redact.fail(f"{self._where()}: {reason}", failed.cause)
            else:
                error = redact.fail(f"{self._where()}: {reason} {gave_up}", failed.cause)
            raise error from error.__cause__
        attempts = policy.statistics["attempt_number"]
        frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns, dtype=object)
        frame[SOURCE_FILE] = self.lineage_name
        frame[SOURCE_LINE] = range(1, len(frame) + 1)
        empty = None
        if frame.empty:
            window = request.window
            empty = (
                f"no rows in the partition window {window[0].isoformat()} to {window[1].isoformat()}"
                if window
                else "the query returned no rows"
            )
        return FetchResult(
            records=frame,
            inputs=[
                {
                    "path": self.lineage_name,
                    "rows": len(frame),
                    "chunks": len(chunks),
                    "query": s.query,
                    "params": {k: str(v) for k, v in params.items()},
                    "attempts": attempts,
                    "timeouts": timeouts or f"driver defaults (dialect {url.get_backend_name()})",
                }
            ],
            landed_schema={} if empty else landed_schema_of_records(frame),
            empty=empty,
        )

    def _read(
        self, url: URL, statement: Any, params: dict[str, Any], apply_timeouts: bool
    ) -> tuple[list[str], list[pd.DataFrame]]:
        """One attempt: connect, run, stream every chunk. Driver errors come back as ``_AttemptFailed``."""
        from sqlalchemy.exc import DBAPIError

        s = self.settings
        engine = self._engine(url, apply_timeouts)
        chunks: list[pd.DataFrame] = []
        connected = False
        try:
            with engine.connect() as connection:
                connected = True
                if apply_timeouts and url.get_backend_name() == "postgresql":
                    connection.exec_driver_sql(f"SET statement_timeout = {int(s.statement_timeout * 1000)}")
                result = connection.execution_options(stream_results=True, yield_per=s.chunksize).execute(
                    statement, params
                )
                columns = list(result.keys())
                duplicates = sorted({c for c in columns if columns.count(c) > 1})
                if duplicates:
                    raise ConnectorError(
                        f"{self._where()}: the query returns column(s) {', '.join(duplicates)} more than once; alias "
                        "them"
                    )
                for rows in result.partitions(s.chunksize):
                    chunks.append(pd.DataFrame([tuple(row) for row in rows], columns=columns, dtype=object))
        except DBAPIError as exc:
            raise _AttemptFailed(exc, connected) from None
        finally:
            engine.dispose()
        return columns, chunks

    def _engine(self, url: URL, apply_timeouts: bool) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import NullPool

        s = self.settings
        backend = url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if apply_timeouts and backend == "postgresql":
            # libpq: bounds TCP connect *and* the startup handshake; keepalives notice a peer that vanished.
            connect_args = {
                "connect_timeout": max(1, round(s.connect_timeout)),
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            }
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if apply_timeouts and backend == "sqlite":
            limit = s.statement_timeout

            @event.listens_for(engine, "connect")
            def _interrupt_long_statements(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
                deadline = time.monotonic() + limit
                dbapi_connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

        return engine

    def _timeouts_for(self, url: URL, redact: Redactor) -> dict[str, str] | None:
        s = self.settings
        backend, driver = url.get_backend_name(), url.get_driver_name()
        if backend in TIMEOUT_DRIVERS and (TIMEOUT_DRIVERS[backend] is None or driver in TIMEOUT_DRIVERS[backend]):
            return {
                "connect_timeout": seconds_text(s.connect_timeout),
                "statement_timeout": seconds_text(s.statement_timeout),
            }
        explicit = sorted({"connect_timeout", "statement_timeout"} & s.model_fields_set)
        if explicit:
            raise redact.fail(
                f"{self._where()}: connector.{' and connector.'.join(explicit)} cannot be applied to "
                f"{backend}+{driver} "
                f"(supported: postgresql+psycopg2, postgresql+psycopg, sqlite); remove the setting and configure the "
                f"timeout in the driver's URL options instead"
            )
        return None

    def _where(self) -> str:
        query = " ".join(self.settings.query.split())
        return f"sql source via ${self.settings.url_env} (query: {query[:200]})"

    def _url(self) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        name = self.settings.url_env
        url = os.environ.get(name)
        if not url:
            raise ConnectorError(
                f"environment variable {name} (connector.url_env) is not set; set it to the SQLAlchemy URL"
            )
        try:
            make_url(url)
        except ArgumentError:
            # SQLAlchemy's message quotes the whole URL, password included: never chain it.
            raise ConnectorError(
                f"environment variable {name} does not hold a valid SQLAlchemy URL (dialect+driver://...)"
            ) from None
        return url

    def _bind_values(self, request: FetchRequest, used: set[str]) -> dict[str, Any]:
        unknown = sorted(used - set(WINDOW_PARAMETERS))
        if unknown:
            raise ConnectorError(
                f"{self._where()}: binds :{', :'.join(unknown)}; only :start, :end (UTC datetimes) and :date are "
                "provided"
            )
        window = request.window
        if used and window is None:
            raise ConnectorError(
                f"{self._where()}: binds :{', :'.join(sorted(used))} but source {request.source!r} is not partitioned"
            )
        if window is None:
            return {}
        values = {"start": window[0], "end": window[1], "date": date.fromisoformat(str(request.partition_key))}
        return {name: values[name] for name in used}


def _describe(redact: Redactor, exc: DBAPIError) -> str:
    """``ProgrammingError (UndefinedColumn): column "nope" does not exist ...``, redacted, on one line."""
    orig = exc.orig if exc.orig is not None else exc
    kind = (
        type(exc).__name__
        if type(orig).__name__ == type(exc).__name__
        else f"{type(exc).__name__} ({type(orig).__name__})"
    )
    return redact.text(f"{kind}: {redact.describe(orig).split(': ', 1)[-1]}")


def _sqlstate(exc: DBAPIError) -> str:
    orig = exc.orig
    return str(getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None) or "")


def _timeout_setting(exc: DBAPIError, connected: bool) -> str | None:
    """Which of our timeouts fired, if one did."""
    if _sqlstate(exc) == _STATEMENT_TIMEOUT_SQLSTATE or (
        connected and isinstance(exc.orig, sqlite3.OperationalError) and "interrupted" in str(exc.orig)
    ):
        return "statement_timeout"
    if not connected and "timeout expired" in str(exc.orig).lower():
        return "connect_timeout"
    return None


def _is_transient(exc: DBAPIError, connected: bool) -> bool:
    """Connection-level failures a retry may cure; everything about the query or credentials is not."""
    from sqlalchemy.exc import OperationalError

    if exc.connection_invalidated or _sqlstate(exc).startswith(_TRANSIENT_SQLSTATE_PREFIXES):
        return True
    message = str(exc.orig).lower()
    return not connected and isinstance(exc, OperationalError) and any(f in message for f in _TRANSIENT_CONNECT_TEXT)
