"""Pulled sources (HTTP, SQL) through the whole pipeline in Dagster: declared ``json`` columns keep nested
values (null ones too) without drift, ``decimal(p, s)`` columns reach the governed Parquet exactly, and
a window without rows is the named ``empty_input`` outcome, not drift."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.resources import RESOURCES
from lepton_pipelines.sources.factory import build_source_assets
from lepton_pipelines.sources.registry import load_sources

from .test_sql import POSTGRES_URL

pytestmark = pytest.mark.timeout(300)
PARTITION = "2026-01-02"


def source_yaml(name: str, connector: dict, schema: list[dict], **extra) -> str:
    spec = {
        "name": name,
        "description": f"{name} test source",
        "owner": "team:platform",
        "connector": connector,
        "schema": schema,
        "partitioning": "daily",
        "start_date": "2026-01-01",
        "governance": {"schema_drift": "error"},
        **extra,
    }
    return json.dumps(spec)  # JSON is YAML


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_LAKE_URL", str(tmp_path / "lake"))
    return Lake(str(tmp_path / "lake"))


def load(tmp_path, specs: dict[str, str]) -> dict:
    folder = tmp_path / "registry"
    folder.mkdir()
    for name, body in specs.items():
        (folder / f"{name}.yaml").write_text(body)
    return {s.name: s for s in load_sources([folder])}


def run(source) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        build_source_assets(source),
        partition_key=PARTITION,
        raise_on_error=False,
        resources={**RESOURCES, "gx": GreatExpectationsResource()},
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def zone_table(lake: Lake, name: str, zone: str = "governed") -> pa.Table:
    folder = lake.table_dir(zone, name, PARTITION)
    return pa.concat_tables([pq.read_table(p.path) for p in folder.glob("*.parquet")])


def test_http_json_and_decimal_columns_end_to_end(api, lake, tmp_path):
    sources = load(
        tmp_path,
        {
            "api_nested": source_yaml(
                "api_nested",
                {"type": "http", "url": f"{api.base}/nested"},
                [
                    {"name": "id", "type": "integer"},
                    {"name": "address", "type": "json"},
                    {"name": "tags", "type": "json"},
                ],
            ),
            "api_money": source_yaml(
                "api_money",
                {"type": "http", "url": f"{api.base}/decimal"},
                [
                    {"name": "id", "type": "integer"},
                    {"name": "amount", "type": "decimal(38, 4)"},
                    {"name": "rate", "type": "float"},
                    {"name": "price__net", "type": "decimal(10, 2)"},
                ],
            ),
        },
    )

    nested = run(sources["api_nested"])
    assert checks(nested)["schema_drift"].passed  # address: null in one record is not drift
    table = zone_table(lake, "api_nested").sort_by("id").to_pydict()
    assert table["address"] == [
        '{"city":"Oslo","zip":"0150"}',
        None,
        '{"city":"Bergen","geo":{"lat":60.39,"lon":5.32}}',
    ]
    assert table["tags"] == ['["a","b"]', "[]", None]

    money = run(sources["api_money"])
    assert checks(money)["schema_drift"].passed and checks(money)["parse_errors"].passed
    raw = zone_table(lake, "api_money", "raw")
    assert raw.schema.field("amount").type == pa.decimal128(38, 4) and raw.schema.field(
        "price__net"
    ).type == pa.decimal128(10, 2)
    governed = zone_table(lake, "api_money").sort_by("id")
    assert governed.schema.field("amount").type == pa.decimal128(38, 4) and governed.schema.field(
        "price__net"
    ).type == pa.decimal128(10, 2)
    assert governed.column("amount").to_pylist() == [Decimal("12345678901234567.1234"), Decimal("7.0000"), None]
    assert governed.column("price__net").to_pylist() == [Decimal("0.30"), Decimal("1.10"), None]
    assert governed.column("rate").to_pylist() == [0.1, 2.5, None]


@pytest.fixture
def money_table(monkeypatch):
    name = f"ledger_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id integer, amount numeric(20,4), booked timestamptz)"))
        connection.execute(
            text(f"""
            INSERT INTO {name}
            SELECT i, (i * 1234567.8901 + 0.0001 * i)::numeric(20,4),
                timestamptz '2026-01-02 00:00:00+00' + i * interval '1 second'
            FROM generate_series(1, 2000) AS i
        """)
        )
    monkeypatch.setenv("LEDGER_DB_URL", POSTGRES_URL)
    yield name
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def test_sql_numeric_is_exact_in_governed_and_an_empty_window_is_a_named_outcome(lake, tmp_path, money_table):
    connector = {
        "type": "sql",
        "url_env": "LEDGER_DB_URL",
        "chunksize": 500,
        "query": f"SELECT id, amount FROM {money_table} WHERE booked >= :start AND booked < :end ORDER BY id",
    }
    schema = [{"name": "id", "type": "integer"}, {"name": "amount", "type": "decimal(20, 4)"}]
    sources = load(tmp_path, {"ledger": source_yaml("ledger", connector, schema, primary_key=["id"])})

    result = run(sources["ledger"])
    assert checks(result)["schema_drift"].passed
    assert zone_table(lake, "ledger", "raw").schema.field("amount").type == pa.decimal128(20, 4)
    governed = zone_table(lake, "ledger").sort_by("id")
    assert governed.schema.field("amount").type == pa.decimal128(20, 4)  # the declared type in every zone
    with create_engine(POSTGRES_URL).connect() as connection:  # the database's own text of every value
        expected = [
            Decimal(v)
            for v in connection.execute(text(f"SELECT amount::text FROM {money_table} ORDER BY id")).scalars()
        ]
    assert governed.column("amount").to_pylist() == expected and len(expected) == 2000
    assert sum(1 for v in expected if float(v) != v) > 1000  # the values a float would have changed

    quiet = dg.materialize(
        build_source_assets(sources["ledger"])[:1],
        partition_key="2026-01-05",
        raise_on_error=False,
        resources={**RESOURCES, "gx": GreatExpectationsResource()},
    )
    evaluations = checks(quiet)
    assert evaluations["schema_drift"].passed  # not "every column removed / retyped → null"
    assert not evaluations["empty_input"].passed and evaluations["empty_input"].severity == dg.AssetCheckSeverity.WARN
    assert evaluations["empty_input"].description.startswith(
        "1 of 1 input(s) without a record: no rows in the partition window 2026-01-05"
    )
