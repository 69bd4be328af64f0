"""The SQL connector against the real PostgreSQL on 127.0.0.1:5432 and against SQLite."""

from __future__ import annotations

import socket
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from lepton_pipelines.connectors import (
    SOURCE_FILE,
    SOURCE_LINE,
    ConnectorError,
    ConnectorTimeoutError,
    FetchRequest,
    SqlSettings,
    build_connector,
)

pytestmark = pytest.mark.timeout(60)

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def fetch(partition_key: str | None = "2026-01-02", **settings):
    settings = {"type": "sql", "url_env": "ORDERS_DB_URL", "backoff_seconds": 0.01, **settings}
    connector = build_connector(SqlSettings.model_validate(settings))
    return connector.fetch(FetchRequest(source="orders", partition_key=partition_key, lake=None))


@pytest.fixture
def pg_table(monkeypatch):
    """A uniquely named table in the ``test`` database, dropped afterwards."""
    name = f"orders_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id integer, qty integer, price numeric(10,2), ts timestamptz)"))
        connection.execute(
            text(f"""
            INSERT INTO {name} VALUES
              (1, 5, 1.50, '2026-01-01 23:59:59+00'),
              (2, NULL, 2.00, '2026-01-02 00:00:00+00'),
              (3, 7, NULL, '2026-01-03 01:00:00+02'),
              (4, 8, 4.25, '2026-01-02 23:59:59+00'),
              (5, 9, 5.00, '2026-01-03 00:00:00+00')
        """)
        )
    monkeypatch.setenv("ORDERS_DB_URL", POSTGRES_URL)
    yield name
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def test_postgres_partition_window_is_half_open_utc_and_values_land_native(pg_table):
    result = fetch(
        query=f"SELECT id, qty, price, ts FROM {pg_table} WHERE ts >= :start AND ts < :end ORDER BY id", chunksize=2
    )
    records = result.records
    assert records["id"].tolist() == [2, 3, 4]  # 01:00+02 on the 3rd is 23:00 UTC on the 2nd
    assert records["qty"].tolist()[0] is None and records["qty"].tolist()[1] == 7  # ints stay ints beside NULL
    assert records["price"].tolist()[0] == Decimal("2.00")
    assert records["ts"].tolist()[1] == datetime(2026, 1, 2, 23, 0, tzinfo=UTC)
    assert records[SOURCE_FILE].unique().tolist() == ["sql:ORDERS_DB_URL"]
    assert records[SOURCE_LINE].tolist() == [1, 2, 3]
    assert result.inputs[0]["rows"] == 3 and result.inputs[0]["chunks"] == 2
    assert result.landed_schema == {"id": "integer", "qty": "integer", "price": "decimal", "ts": "timestamp"}


def test_postgres_empty_partition_is_an_outcome_not_a_schema(pg_table):
    result = fetch(partition_key="2025-06-01", query=f"SELECT id, ts FROM {pg_table} WHERE ts >= :start AND ts < :end")
    assert result.records.empty and list(result.records.columns) == ["id", "ts", SOURCE_FILE, SOURCE_LINE]
    assert result.landed_schema == {}  # not "every column retyped → null"
    assert result.empty == "no rows in the partition window 2025-06-01T00:00:00+00:00 to 2025-06-02T00:00:00+00:00"
    assert (
        fetch(partition_key=None, query=f"SELECT id FROM {pg_table} WHERE false").empty == "the query returned no rows"
    )


def test_query_errors_name_the_env_var_and_query_and_are_not_retried(pg_table):
    with pytest.raises(
        ConnectorError,
        match=r"^sql source via \$ORDERS_DB_URL \(query: SELECT nope FROM orders_\w+\): "
        r"ProgrammingError \(UndefinedColumn\): column \"nope\" does not exist",
    ) as failure:
        fetch(query=f"SELECT nope FROM {pg_table}")
    assert "gave up" not in str(failure.value)


def test_numeric_values_arrive_exact_as_decimal(monkeypatch):
    """numeric(20,4) as float is inexact for most money values: the driver's Decimal must reach raw."""
    monkeypatch.setenv("ORDERS_DB_URL", POSTGRES_URL)
    query = (
        "SELECT v::numeric(20,4) AS amount FROM (VALUES ('1234567890123456.7891'), ('0.1000'), ('-0.0001'), "
        "(NULL)) t(v)"
    )
    result = fetch(partition_key=None, query=query)
    amounts = result.records["amount"].tolist()
    assert (
        amounts[:3] == [Decimal("1234567890123456.7891"), Decimal("0.1000"), Decimal("-0.0001")] and amounts[3] is None
    )
    assert [str(a) for a in amounts[:3]] == ["1234567890123456.7891", "0.1000", "-0.0001"]  # scale kept
    assert result.landed_schema == {"amount": "decimal"}


def test_connection_errors_hide_the_password_and_are_retried(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("ORDERS_DB_URL", f"postgresql+psycopg2://postgres:hunter2secret@127.0.0.1:{port}/test")
    with pytest.raises(ConnectorError) as failure:
        fetch(query="SELECT 1", retries=2)
    assert str(failure.value) == (
        f'sql source via $ORDERS_DB_URL (query: SELECT 1): OperationalError: connection to server at "127.0.0.1", '
        f"port {port} failed: Connection refused Is the server running on that host and accepting TCP/IP connections? "
        f"(gave up after 3 attempts; connector.retries=2)"
    )
    assert "hunter2secret" not in chain_text(failure.value) and "RedactedError" in chain_text(failure.value)


def test_a_server_that_accepts_but_never_answers_fails_within_connect_timeout(monkeypatch):
    with SilentServer() as silent:
        monkeypatch.setenv(
            "ORDERS_DB_URL", f"postgresql+psycopg2://postgres:p%40ss-Word-77@127.0.0.1:{silent.port}/test"
        )
        with pytest.raises(ConnectorTimeoutError) as failure:
            fetch(query="SELECT 1", connect_timeout="2s", retries=1)
    message = str(failure.value)
    assert message.startswith(
        "sql source via $ORDERS_DB_URL (query: SELECT 1): no answer from the database within "
        'connect_timeout=2s (OperationalError: connection to server at "127.0.0.1", '
        f"port {silent.port} failed: timeout expired"
    )
    assert message.endswith("(gave up after 2 attempts; connector.retries=1)")
    assert silent.accepted >= 2  # both attempts reached the server and were abandoned by the timeout
    assert "p@ss-Word-77" not in chain_text(failure.value) and "p%40ss-Word-77" not in chain_text(failure.value)


def test_a_query_beyond_statement_timeout_is_cancelled_with_a_named_error(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", POSTGRES_URL)
    with pytest.raises(ConnectorTimeoutError) as failure:
        fetch(partition_key=None, query="SELECT pg_sleep(30) AS slept", statement_timeout="1s")
    assert str(failure.value) == (
        "sql source via $ORDERS_DB_URL (query: SELECT pg_sleep(30) AS slept): the query ran longer than "
        "statement_timeout=1s and the database cancelled it (OperationalError (QueryCanceled): canceling statement "
        "due to statement timeout); raise connector.statement_timeout or narrow the query"
    )


def test_a_transient_connection_failure_is_retried_and_recovers(monkeypatch):
    with FlakyProxy(failures=2) as proxy:
        monkeypatch.setenv(
            "ORDERS_DB_URL", f"postgresql+psycopg2://postgres:pw-1234@127.0.0.1:{proxy.port}/test?sslmode=disable"
        )
        result = fetch(partition_key=None, query="SELECT 41 + 1 AS answer", retries=3)
    assert result.records["answer"].tolist() == [42]
    assert result.inputs[0]["attempts"] == 3 and proxy.accepted == 3
    assert result.inputs[0]["timeouts"] == {"connect_timeout": "10s", "statement_timeout": "300s"}


def test_permanent_connection_errors_are_not_retried(monkeypatch):
    with FlakyProxy(failures=0) as proxy:
        monkeypatch.setenv(
            "ORDERS_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/no_such_db_4711?sslmode=disable"
        )
        with pytest.raises(ConnectorError, match=r'OperationalError: .*database "no_such_db_4711" does not exist$'):
            fetch(partition_key=None, query="SELECT 1", retries=3)
    assert proxy.accepted == 1


def test_sqlite_statement_timeout_interrupts_a_runaway_query(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", f"sqlite:///{tmp_path / 'x.db'}")
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"
    with pytest.raises(
        ConnectorTimeoutError, match=r"ran longer than statement_timeout=0\.5s .*\(OperationalError: interrupted\)"
    ):
        fetch(partition_key=None, query=endless, statement_timeout="500ms")


def test_timeouts_for_an_unsupported_dialect_are_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", "mysql+pymysql://u:topsecret-pw@127.0.0.1:1/db")
    with pytest.raises(
        ConnectorError,
        match=r"connector.statement_timeout cannot be applied to mysql\+pymysql "
        r"\(supported: postgresql\+psycopg2, postgresql\+psycopg, sqlite\)",
    ) as failure:
        fetch(partition_key=None, query="SELECT 1", statement_timeout="10s")
    assert "topsecret" not in chain_text(failure.value)


def test_duration_settings():
    def settings(**kw):
        return SqlSettings.model_validate({"type": "sql", "url_env": "X", "query": "SELECT 1", **kw})

    assert (settings().connect_timeout, settings().statement_timeout) == (10.0, 300.0)
    assert settings(connect_timeout="500ms", statement_timeout="5m").statement_timeout == 300.0
    assert settings(connect_timeout=3).connect_timeout == 3.0
    with pytest.raises(ValueError, match="'ten' is not a duration; write e.g. 10s, 500ms, 5m or 1h"):
        settings(connect_timeout="ten")


def test_missing_env_var_and_unsupported_parameters_are_explained(monkeypatch):
    monkeypatch.delenv("ORDERS_DB_URL", raising=False)
    with pytest.raises(ConnectorError, match="environment variable ORDERS_DB_URL .* is not set"):
        fetch(query="SELECT 1")
    monkeypatch.setenv("ORDERS_DB_URL", "sqlite://")
    with pytest.raises(ConnectorError, match=r"binds :region; only :start, :end .* and :date are provided"):
        fetch(query="SELECT 1 WHERE :region = 'x'")
    with pytest.raises(ConnectorError, match="binds :date but source 'orders' is not partitioned"):
        fetch(partition_key=None, query="SELECT 1 WHERE :date IS NOT NULL")


def test_sqlite_with_date_parameter(tmp_path, monkeypatch):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sales (day TEXT, store TEXT, amount REAL)")
        connection.executemany(
            "INSERT INTO sales VALUES (?, ?, ?)",
            [("2026-01-01", "a", 1.0), ("2026-01-02", "b", 2.5), ("2026-01-02", "c", None)],
        )
    monkeypatch.setenv("ORDERS_DB_URL", f"sqlite:///{path}")
    result = fetch(query="SELECT store, amount FROM sales WHERE day = :date ORDER BY store", chunksize=1)
    assert result.records["store"].tolist() == ["b", "c"]
    assert result.records["amount"].tolist()[0] == 2.5 and result.records["amount"].tolist()[1] is None
    assert result.inputs[0]["chunks"] == 2 and result.inputs[0]["params"] == {"date": "2026-01-02"}
    unpartitioned = fetch(partition_key=None, query="SELECT count(*) AS n FROM sales")
    assert unpartitioned.records["n"].tolist() == [3]


# -- helpers: real TCP servers standing in for a hung or flapping database ------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chain_text(error: BaseException | None) -> str:
    """Every message in an exception's cause chain, as Dagster would serialize it."""
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return "\n".join(parts)


class _Listener:
    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.socket.close()
        for held in self.held:
            held.close()

    def _serve(self):
        while True:
            try:
                client, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            self.handle(client)

    def handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class SilentServer(_Listener):
    """Accepts TCP connections and never says a word — a database host that hangs."""

    def handle(self, client):
        self.held.append(client)


class FlakyProxy(_Listener):
    """Drops the first ``failures`` connections at once (as a restarting database does), then forwards
    every byte to the real PostgreSQL on 127.0.0.1:5432."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def handle(self, client):
        if self.accepted <= self.failures:
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", 5432))
        self.held += [client, upstream]
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
