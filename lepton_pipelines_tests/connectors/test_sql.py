"""The SQL connector against the real PostgreSQL on 127.0.0.1:5432 and against SQLite."""
from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from lepton_pipelines.connectors import (
    SOURCE_FILE,
    SOURCE_LINE,
    ConnectorError,
    FetchRequest,
    SqlSettings,
    build_connector,
)

pytestmark = pytest.mark.timeout(60)

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def fetch(partition_key: str | None = "2026-01-02", **settings):
    connector = build_connector(SqlSettings.model_validate({"type": "sql", "url_env": "ORDERS_DB_URL", **settings}))
    return connector.fetch(FetchRequest(source="orders", partition_key=partition_key, lake=None))


@pytest.fixture
def pg_table(monkeypatch):
    """A uniquely named table in the ``test`` database, dropped afterwards."""
    name = f"orders_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id integer, qty integer, price numeric(10,2), ts timestamptz)"))
        connection.execute(text(f"""
            INSERT INTO {name} VALUES
              (1, 5, 1.50, '2026-01-01 23:59:59+00'),
              (2, NULL, 2.00, '2026-01-02 00:00:00+00'),
              (3, 7, NULL, '2026-01-03 01:00:00+02'),
              (4, 8, 4.25, '2026-01-02 23:59:59+00'),
              (5, 9, 5.00, '2026-01-03 00:00:00+00')
        """))
    monkeypatch.setenv("ORDERS_DB_URL", POSTGRES_URL)
    yield name
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def test_postgres_partition_window_is_half_open_utc_and_values_land_native(pg_table):
    result = fetch(query=f"SELECT id, qty, price, ts FROM {pg_table} WHERE ts >= :start AND ts < :end ORDER BY id",
                   chunksize=2)
    records = result.records
    assert records["id"].tolist() == [2, 3, 4]  # 01:00+02 on the 3rd is 23:00 UTC on the 2nd
    assert records["qty"].tolist()[0] is None and records["qty"].tolist()[1] == 7  # ints stay ints beside NULL
    assert records["price"].tolist()[0] == Decimal("2.00")
    assert records["ts"].tolist()[1] == datetime(2026, 1, 2, 23, 0, tzinfo=timezone.utc)
    assert records[SOURCE_FILE].unique().tolist() == ["sql:ORDERS_DB_URL"]
    assert records[SOURCE_LINE].tolist() == [1, 2, 3]
    assert result.inputs[0]["rows"] == 3 and result.inputs[0]["chunks"] == 2
    assert result.landed_schema == {"id": "integer", "qty": "integer", "price": "decimal", "ts": "timestamp"}


def test_postgres_empty_partition_keeps_the_columns(pg_table):
    result = fetch(partition_key="2025-06-01", query=f"SELECT id, ts FROM {pg_table} WHERE ts >= :start AND ts < :end")
    assert result.records.empty and list(result.records.columns) == ["id", "ts", SOURCE_FILE, SOURCE_LINE]


def test_query_errors_name_the_env_var_and_query(pg_table):
    with pytest.raises(ConnectorError, match=r"via \$ORDERS_DB_URL \(query: SELECT nope FROM .*ProgrammingError.*nope"):
        fetch(query=f"SELECT nope FROM {pg_table}")


def test_connection_errors_hide_the_password(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", "postgresql+psycopg2://postgres:hunter2secret@127.0.0.1:1/test")
    with pytest.raises(ConnectorError) as failure:
        fetch(query="SELECT 1")
    message = str(failure.value)
    assert "$ORDERS_DB_URL" in message and "OperationalError" in message and "hunter2secret" not in message


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
        connection.executemany("INSERT INTO sales VALUES (?, ?, ?)",
                               [("2026-01-01", "a", 1.0), ("2026-01-02", "b", 2.5), ("2026-01-02", "c", None)])
    monkeypatch.setenv("ORDERS_DB_URL", f"sqlite:///{path}")
    result = fetch(query="SELECT store, amount FROM sales WHERE day = :date ORDER BY store", chunksize=1)
    assert result.records["store"].tolist() == ["b", "c"]
    assert result.records["amount"].tolist()[0] == 2.5 and result.records["amount"].tolist()[1] is None
    assert result.inputs[0]["chunks"] == 2 and result.inputs[0]["params"] == {"date": "2026-01-02"}
    unpartitioned = fetch(partition_key=None, query="SELECT count(*) AS n FROM sales")
    assert unpartitioned.records["n"].tolist() == [3]
