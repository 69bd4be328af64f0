"""Real public data sets that no one here wrote (shipped inside the ``vega_datasets`` PyPI package),
declared only through ``LEPTON_SOURCES_PATH`` and run through the shipped definitions, then checked row by
row against DuckDB reading the same landing files with the same declared formats.

``stocks.csv`` is the real-data case that once lost 100% of its rows with a green run: its dates are text
like ``Jan 1 2000``. Declared with its format it is certified whole; declared without, the run fails
loudly (row-loss guard, drift) with every row in quarantine saying which text did not parse.
"""

from __future__ import annotations

import shutil
import textwrap

import duckdb
import pandas as pd
import pytest
from vega_datasets import local_data

from lepton_pipelines.definitions import build_defs
from lepton_pipelines.sources.automation import source_job_name

pytestmark = pytest.mark.timeout(300)

STOCKS = """
name: {name}
description: Monthly closing prices of five tech stocks, 2000-2010 (vega_datasets stocks.csv)
owner: team:markets-data
connector: {{type: file, format: csv, glob: "stocks.csv"}}
schema:
  - {{name: symbol, type: string, nullable: false, description: Ticker}}
  - {{name: trade_date, from: date, type: date, nullable: false,
      {date_format}description: First trading day of the month}}
  - {{name: price, type: float, nullable: false, description: "Closing price, USD"}}
primary_key: [symbol, trade_date]
partitioning: none
expectations:
  - {{expectation: expect_column_values_to_be_in_set, kwargs:
      {{column: symbol, value_set: [MSFT, AMZN, IBM, GOOG, AAPL]}}}}
  - {{expectation: expect_column_values_to_be_between, kwargs: {{column: price, min_value: 0, strict_min: true}}}}
governance: {{schema_drift: warn}}
"""

WEATHER = """
name: seattle_weather
description: Daily weather observations in Seattle, 2012-2015 (vega_datasets seattle-weather.csv)
owner: team:research
connector: {type: file, format: csv, glob: "seattle-weather.csv"}
schema:
  - {name: observed_on, from: date, type: date, nullable: false, format: "%Y/%m/%d", description: Day of observation}
  - {name: precipitation, type: float, description: "Precipitation, mm"}
  - {name: temp_max, type: float, description: "Daily maximum, °C"}
  - {name: temp_min, type: float, description: "Daily minimum, °C"}
  - {name: wind, type: float, description: "Mean wind speed, m/s"}
  - {name: weather, type: string, nullable: false, description: Condition}
primary_key: [observed_on]
partitioning: none
expectations:
  - {expectation: expect_column_values_to_be_in_set, kwargs:
      {column: weather, value_set: [drizzle, rain, sun, snow, fog]}}
  - {expectation: expect_column_pair_values_a_to_be_greater_than_b, kwargs:
      {column_A: temp_max, column_B: temp_min, or_equal: true}}
governance: {schema_drift: error}
"""


@pytest.fixture
def public_sources(tmp_path, monkeypatch, tmp_lake):
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "stocks.yaml").write_text(
        textwrap.dedent(STOCKS.format(name="stocks", date_format='format: "%b %d %Y", '))
    )
    (registry / "stocks_undeclared.yaml").write_text(
        textwrap.dedent(STOCKS.format(name="stocks_undeclared", date_format=""))
    )
    (registry / "seattle_weather.yaml").write_text(textwrap.dedent(WEATHER))
    monkeypatch.setenv("LEPTON_SOURCES_PATH", str(registry))
    for source, dataset in (
        ("stocks", local_data.stocks),
        ("stocks_undeclared", local_data.stocks),
        ("seattle_weather", local_data.seattle_weather),
    ):
        folder = tmp_lake.path("landing", source)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(dataset.filepath, folder.path + "/" + dataset.filepath.rsplit("/", 1)[-1])
    return tmp_lake


def run(defs, source: str):
    return defs.resolve_job_def(source_job_name(source)).execute_in_process(raise_on_error=False)


def test_stocks_certified_row_by_row_as_duckdb_reads_them(public_sources):
    lake = public_sources
    result = run(build_defs(), "stocks")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    governed = lake.read_table("governed", "stocks", None).sort_values(["symbol", "trade_date"]).reset_index(drop=True)
    landing = lake.path("landing", "stocks", "stocks.csv").path
    expected = duckdb.sql(
        f"select symbol, cast(strptime(date, '%b %d %Y') as date) as trade_date, cast(price as double) as price "
        f"from read_csv('{landing}', all_varchar=true) order by symbol, trade_date"
    ).df()
    assert len(governed) == len(expected) == 560
    assert governed["symbol"].tolist() == expected["symbol"].tolist()
    assert [d.isoformat() for d in governed["trade_date"]] == [
        d.isoformat() for d in pd.to_datetime(expected["trade_date"]).dt.date
    ]
    assert governed["price"].tolist() == expected["price"].tolist()
    # stored as Parquet DATE: DuckDB sees a DATE column in the governed zone
    kind = duckdb.sql(
        f"describe select trade_date from read_parquet('{lake.url}/governed/stocks/*.parquet')"
    ).fetchall()[0][1]
    assert kind == "DATE"


def test_stocks_without_their_date_format_fail_loudly_and_lose_nothing(public_sources):
    lake = public_sources
    result = run(build_defs(), "stocks_undeclared")
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert (
        not checks["row_retention"].passed
        and "560 landed record(s) and none governed" in checks["row_retention"].description
    )
    assert (
        not checks["schema_drift"].passed
        and "retyped: date (560 of 560 values are not date)" in checks["schema_drift"].description
    )
    quarantine = pd.read_parquet(lake.table_dir("quarantine", "stocks_undeclared", None).path)
    assert len(quarantine) == 560
    assert quarantine["_reason"].iloc[0] == "trade_date: 'Jan 1 2000' is not a date (ISO-8601)"
    assert not lake.table_dir("governed", "stocks_undeclared", None).exists()


def test_seattle_weather_certified_row_by_row_as_duckdb_reads_it(public_sources):
    lake = public_sources
    result = run(build_defs(), "seattle_weather")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    governed = lake.read_table("governed", "seattle_weather", None).sort_values("observed_on").reset_index(drop=True)
    landing = lake.path("landing", "seattle_weather", "seattle-weather.csv").path
    expected = duckdb.sql(
        "select cast(strptime(date, '%Y/%m/%d') as date) as observed_on, cast(precipitation as double) as "
        "precipitation, "
        "cast(temp_max as double) as temp_max, cast(temp_min as double) as temp_min, cast(wind as double) as wind, "
        "weather "
        f"from read_csv('{landing}', all_varchar=true) order by observed_on"
    ).df()
    assert len(governed) == len(expected) == 1461
    for column in ("precipitation", "temp_max", "temp_min", "wind", "weather"):
        assert governed[column].tolist() == expected[column].tolist(), column
    assert [d.isoformat() for d in governed["observed_on"]] == [
        d.isoformat() for d in pd.to_datetime(expected["observed_on"]).dt.date
    ]
