"""SQL databases through SQLAlchemy.

The connection URL lives only in the environment variable named by ``url_env`` (it usually holds a
password), never in YAML; errors name that variable and the query, and scrub the password. The query
binds the partition window as ``:start`` / ``:end`` (timezone-aware UTC datetimes, half-open) or
``:date`` (a ``datetime.date``). Rows are streamed with a server-side cursor in ``chunksize`` batches so
the database driver never buffers the whole result; values land as the driver returns them (native
Python types in object columns, so an integer column with NULLs stays integers).
"""
from __future__ import annotations

import os
from datetime import date
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from lepton_pipelines.connectors.base import (
    SOURCE_FILE,
    SOURCE_LINE,
    Connector,
    ConnectorError,
    ConnectorSettings,
    FetchRequest,
    FetchResult,
    landed_schema_of_records,
    register_connector,
)
from lepton_pipelines.connectors.http import ENV_VAR_PATTERN

WINDOW_PARAMETERS = ("start", "end", "date")


class SqlSettings(ConnectorSettings):
    """``connector:`` block of a SQL source."""

    type: Literal["sql"] = "sql"
    url_env: str = Field(pattern=ENV_VAR_PATTERN)
    query: str = Field(min_length=1)
    chunksize: int = Field(default=50_000, ge=1)


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
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        s = self.settings
        statement = text(s.query)
        params = self._bind_values(request, set(statement.compile().params))
        url = self._url()
        password = make_url(url).password
        engine = create_engine(url, poolclass=NullPool)
        chunks: list[pd.DataFrame] = []
        try:
            with engine.connect() as connection:
                result = connection.execution_options(stream_results=True, yield_per=s.chunksize).execute(statement, params)
                columns = list(result.keys())
                duplicates = sorted({c for c in columns if columns.count(c) > 1})
                if duplicates:
                    raise ConnectorError(f"{self._where()}: the query returns column(s) {', '.join(duplicates)} more than once; alias them")
                for rows in result.partitions(s.chunksize):
                    chunks.append(pd.DataFrame([tuple(row) for row in rows], columns=columns, dtype=object))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            message = " ".join(line.strip() for line in reason[:3])
            if password:
                message = message.replace(str(password), "***")
            raise ConnectorError(f"{self._where()}: {type(exc).__name__}: {message}") from exc
        finally:
            engine.dispose()
        frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns, dtype=object)
        frame[SOURCE_FILE] = self.lineage_name
        frame[SOURCE_LINE] = range(1, len(frame) + 1)
        return FetchResult(
            records=frame,
            inputs=[{"path": self.lineage_name, "rows": len(frame), "chunks": len(chunks), "query": s.query,
                     "params": {k: str(v) for k, v in params.items()}}],
            landed_schema=landed_schema_of_records(frame),
        )

    def _where(self) -> str:
        query = " ".join(self.settings.query.split())
        return f"sql source via ${self.settings.url_env} (query: {query[:200]})"

    def _url(self) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        name = self.settings.url_env
        url = os.environ.get(name)
        if not url:
            raise ConnectorError(f"environment variable {name} (connector.url_env) is not set; set it to the SQLAlchemy URL")
        try:
            make_url(url)
        except ArgumentError:
            raise ConnectorError(f"environment variable {name} does not hold a valid SQLAlchemy URL (dialect+driver://...)") from None
        return url

    def _bind_values(self, request: FetchRequest, used: set[str]) -> dict[str, Any]:
        unknown = sorted(used - set(WINDOW_PARAMETERS))
        if unknown:
            raise ConnectorError(
                f"{self._where()}: binds :{', :'.join(unknown)}; only :start, :end (UTC datetimes) and :date are provided"
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
