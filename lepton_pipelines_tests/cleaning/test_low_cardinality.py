"""Low-cardinality landed text becomes a categorical; every text rule gives the same values and counts on it."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from lepton_pipelines.cleaning import build_rules, coerce_to_schema
from lepton_pipelines.cleaning.support import low_cardinality_text
from lepton_pipelines.lake.store import Lake

pytestmark = pytest.mark.timeout(60)
ROWS = 2_000


def sites(values: list, rows: int = ROWS) -> pd.Series:
    return pd.Series((values * (rows // len(values) + 1))[:rows], dtype="str", name="site")


def test_repetitive_text_becomes_categorical_ids_and_small_tables_stay_text():
    repeated = low_cardinality_text(sites([" Berlin", "paris", None, "Oslo "]))
    assert isinstance(repeated.dtype, pd.CategoricalDtype)
    assert repeated.astype("str").tolist() == sites([" Berlin", "paris", None, "Oslo "]).tolist()
    assert repeated.isna().sum() == ROWS // 4
    ids = pd.Series([f"T{i:08d}" for i in range(ROWS)], dtype="str")
    assert low_cardinality_text(ids).dtype == "str"
    assert low_cardinality_text(sites(["a", "b"], rows=100)).dtype == "str"  # below the minimum row count
    # The sample repeats but the whole column does not: decided on the whole column.
    late_ids = pd.concat(
        [sites(["a"], rows=ROWS), pd.Series([f"id{i}" for i in range(ROWS)], dtype="str")], ignore_index=True
    )
    assert low_cardinality_text(late_ids).dtype == "str"


def test_coerce_types_repetitive_string_columns_as_categoricals(telemetry):
    landed = pd.DataFrame(
        {"device_id": [f"d{i}" for i in range(ROWS)], "seq": ["1"] * ROWS, "site": sites(["Berlin", "Oslo"])},
        dtype="str",
    )
    frame = coerce_to_schema(landed, telemetry).frame
    assert isinstance(frame["site"].dtype, pd.CategoricalDtype) and frame["device_id"].dtype == "str"


@pytest.mark.parametrize(
    "rules, column",
    [
        ([{"rule": "trim"}], "site"),
        ([{"rule": "trim", "empty_to_null": False}], "site"),
        ([{"rule": "normalize_case", "columns": ["site"], "case": "upper"}], "site"),
        ([{"rule": "impute", "columns": ["site"], "strategy": "constant", "value": "unknown"}], "site"),
        ([{"rule": "replace_values", "values": {"site": {"paris": "Paris", "  ": None}}}], "site"),
    ],
)
def test_text_rules_give_the_same_values_and_reports_on_categoricals(telemetry, rules, column):
    text = pd.DataFrame(
        {"device_id": sites(["d1", "d2"]), "site": sites([" Berlin", "paris", None, "  ", "BERLIN", "Oslo "])}
    )
    categorical = text.assign(site=text["site"].astype("category"))
    (rule,) = build_rules(rules, telemetry)
    on_text, on_categorical = rule.apply(text), rule.apply(categorical)
    assert isinstance(on_categorical.frame[column].dtype, pd.CategoricalDtype)
    assert on_categorical.frame[column].astype("str").tolist() == on_text.frame[column].astype("str").tolist()
    assert on_categorical.report == on_text.report
    assert categorical["site"].astype("str").tolist() == text["site"].tolist()  # input untouched


def test_case_normalizing_merges_categories_that_become_equal(telemetry):
    frame = pd.DataFrame({"site": sites(["usd", "USD", "Usd"]).astype("category")})
    (rule,) = build_rules([{"rule": "normalize_case", "columns": ["site"], "case": "upper"}], telemetry)
    outcome = rule.apply(frame)
    assert list(outcome.frame["site"].cat.categories) == ["USD"]
    assert outcome.report["changed"] == {"site": ROWS - len(range(1, ROWS, 3))}


def test_categoricals_publish_as_dictionary_text_that_duckdb_reads_as_varchar(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    frame = pd.DataFrame({"id": range(ROWS), "site": low_cardinality_text(sites(["Berlin", None, "Oslo"]))})
    lake.write_table("clean", "places", "2026-03-01", frame)
    back = lake.read_table("clean", "places", "2026-03-01")
    assert (
        isinstance(back["site"].dtype, pd.CategoricalDtype)
        and back["site"].astype("str").tolist() == frame["site"].astype("str").tolist()
    )
    rows = duckdb.sql(
        f"select typeof(site), count(*) from read_parquet('{lake.glob_pattern('clean', 'places')}', "
        "hive_partitioning=true) "
        "where site = 'Oslo' group by 1"
    ).fetchall()
    assert rows == [("VARCHAR", ROWS // 3)]
