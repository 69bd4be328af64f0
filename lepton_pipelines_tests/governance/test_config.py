"""Bad expectation config fails at definitions load, naming the file, the entry and what is allowed."""

from __future__ import annotations

import pytest

from lepton_pipelines.contract.documents import SHIPPED_SOURCES, source_files
from lepton_pipelines.sources.registry import SourceRegistryError, load_source_file, load_sources

from .conftest import ORDERS_YAML, write_source

pytestmark = pytest.mark.timeout(120)


def load_with(tmp_path, expectations: str) -> list[str]:
    text = ORDERS_YAML.format(name="orders", row_failures="quarantine", schema_drift="warn", max_lag="6h")
    text = (
        text.split("expectations:")[0]
        + "expectations:\n"
        + expectations
        + "\n"
        + "governance:"
        + text.split("governance:")[1]
    )
    source, problems = load_source_file(write_source(tmp_path, text, "orders"))
    assert source is None
    return problems


def test_unknown_expectation_name_is_reported_with_file_and_entry(tmp_path):
    problems = load_with(tmp_path, "  - {expectation: expect_column_values_to_be_betwen, kwargs: {column: amount}}")
    assert len(problems) == 1
    assert str(tmp_path / "orders.yaml") in problems[0] and "expectations[0]" in problems[0]
    assert "unknown expectation 'expect_column_values_to_be_betwen'" in problems[0]
    assert "expect_column_values_to_be_between" in problems[0]  # suggestion


def test_bad_kwargs_are_reported_with_what_is_allowed(tmp_path):
    problems = load_with(
        tmp_path,
        "\n".join(
            [
                "  - {expectation: expect_column_values_to_not_be_null, kwargs: {column: amount}}",
                "  - {expectation: expect_column_values_to_be_between, kwargs: {column: amount, minimum: 0}}",
                "  - {expectation: expect_column_values_to_be_in_set, kwargs: {column: status}}",
                "  - {expectation: expect_column_values_to_be_between, kwargs: {column: amount, min_value: 0, "
                "mostly: 3}, name: amount_mostly}",
            ]
        ),
    )
    text = "\n".join(problems)
    assert all(str(tmp_path / "orders.yaml") in p for p in problems)
    assert "expectations[1] (expect_column_values_to_be_between): kwargs.minimum: unknown kwarg" in text
    assert "allowed kwargs:" in text and "min_value" in text
    assert "expectations[2] (expect_column_values_to_be_in_set): kwargs.value_set: required kwarg is missing" in text
    assert (
        "expectations[3] (expect_column_values_to_be_between): kwargs.mostly: ensure this value is less than or "
        "equal to 1" in text
    )
    assert "expectations[0]" not in text


def test_unknown_column_is_reported_with_declared_columns(tmp_path):
    problems = load_with(tmp_path, "  - {expectation: expect_column_values_to_not_be_null, kwargs: {column: amout}}")
    assert problems == [
        f"{tmp_path / 'orders.yaml'}: expectations[0] (expect_column_values_to_not_be_null): kwargs.column: column "
        "'amout' "
        "is not in the schema; declared columns: order_id, status, amount, created_at"
    ]


def test_load_sources_collects_expectation_errors(tmp_path):
    load_with(tmp_path, "  - {expectation: expect_column_values_to_be_unique, kwargs: {column_list: [nope]}}")
    with pytest.raises(SourceRegistryError, match=r"orders.yaml: expectations\[0\].*column_list"):
        load_sources([tmp_path])


def test_shipped_registry_expectations_are_valid():
    files = source_files(SHIPPED_SOURCES)
    assert files
    # Other parts of a shipped file are other folders' business; every expectation must build in GX.
    problems = [p for f in files for p in load_source_file(f)[1] if "expectations" in p]
    assert problems == []
