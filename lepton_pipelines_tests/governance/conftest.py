"""Sources built from small YAML files through the real registry loader, and a real GX resource."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from lepton_pipelines.governance import GovernanceContext, GreatExpectationsResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.sources.registry import Source, load_source_file

ORDERS_YAML = """
name: {name}
description: Test orders.
owner: team:test
connector: {{type: file, format: csv}}
schema:
  - {{name: order_id, type: integer, nullable: false, description: Order number}}
  - {{name: status, type: string, description: Order status}}
  - {{name: amount, type: float, description: Amount in EUR}}
  - {{name: created_at, type: timestamp, description: When the order was placed}}
primary_key: [order_id]
event_time: created_at
partitioning: daily
expectations:
  - {{expectation: expect_column_values_to_not_be_null, kwargs: {{column: amount}}}}
  - {{expectation: expect_column_values_to_be_between, kwargs: {{column: amount, min_value: 0, max_value: 1000}}}}
  - {{expectation: expect_column_values_to_be_in_set, kwargs: {{column: status, value_set: [new, paid, shipped]}}}}
  - {{expectation: expect_table_row_count_to_be_between, kwargs: {{min_value: 3}}}}
  - {{expectation: expect_column_mean_to_be_between, kwargs: {{column: amount, max_value: 500}}, severity: warn}}
governance: {{row_failures: {row_failures}, schema_drift: {schema_drift}}}
freshness: {{max_lag: {max_lag}}}
"""


def write_source(folder: Path, text: str, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def orders_source(
    folder: Path,
    name: str = "orders",
    row_failures: str = "quarantine",
    schema_drift: str = "warn",
    max_lag: str = "6h",
) -> Source:
    path = write_source(
        folder,
        ORDERS_YAML.format(name=name, row_failures=row_failures, schema_drift=schema_drift, max_lag=max_lag),
        name,
    )
    source, problems = load_source_file(path)
    assert not problems, problems
    return source


def good_orders(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": range(1, n + 1),
            "status": ["new", "paid", "shipped"] * (n // 3) + ["new"] * (n % 3),
            "amount": [10.0 * (i + 1) for i in range(n)],
            "_source_file": ["orders.csv"] * n,
            "_source_line": range(2, n + 2),
        }
    )


def cleaning_for(frame: pd.DataFrame, duplicates: int = 0, dropped: int = 0) -> dict:
    """The clean step's ledger for ``frame`` as the clean table (``duplicates``/``dropped`` removed before it)."""
    from lepton_pipelines.governance.certify import clean_ledger

    raw = len(frame) + duplicates + dropped
    cleaning = {
        "input_rows": raw,
        "output_rows": len(frame),
        "duplicates_removed": duplicates,
        "rows_dropped": dropped,
        "balanced": True,
    }
    return clean_ledger(raw, 0, cleaning, 0, 0)


@pytest.fixture(scope="session")
def gx_resource() -> GreatExpectationsResource:
    return GreatExpectationsResource()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def make_ctx(lake: Lake, gx_resource: GreatExpectationsResource):
    def build(source: Source, partition_key: str | None = "2026-03-01") -> GovernanceContext:
        return GovernanceContext(
            source=source,
            lake=lake,
            partition_key=partition_key,
            gx=gx_resource,
            log=logging.getLogger("test.governance"),
        )

    return build
