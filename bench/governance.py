"""Benchmark: a 10-expectation suite on a 1,000,000-row partition through the GX resource, beside the
same checks written directly in pandas, in the same run. Target: GX ≤ 5× pandas. The one-off GX import
is timed separately because a long-lived code server pays it once, not per partition.

    .venv/bin/python bench/governance.py [rows]
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SOURCE_YAML = """
name: bench_orders
description: Benchmark orders.
owner: team:bench
connector: {type: file, format: csv}
schema:
  - {name: order_id, type: integer, nullable: false}
  - {name: customer, type: string}
  - {name: status, type: string}
  - {name: amount, type: float}
  - {name: quantity, type: integer}
  - {name: country, type: string}
primary_key: [order_id]
expectations:
  - {expectation: expect_column_values_to_not_be_null, kwargs: {column: amount}}
  - {expectation: expect_column_values_to_not_be_null, kwargs: {column: customer}}
  - {expectation: expect_column_values_to_be_between, kwargs: {column: amount, min_value: 0, max_value: 10000}}
  - {expectation: expect_column_values_to_be_between, kwargs: {column: quantity, min_value: 1, max_value: 100}}
  - {expectation: expect_column_values_to_be_in_set, kwargs:
      {column: status, value_set: [new, paid, shipped, returned]}}
  - {expectation: expect_column_values_to_be_in_set, kwargs: {column: country, value_set: [DE, FR, NL, BE, AT, CH]}}
  - {expectation: expect_column_values_to_match_regex, kwargs: {column: customer, regex: "^C[0-9]{6}$"}}
  - {expectation: expect_column_values_to_be_unique, kwargs: {column: order_id}}
  - {expectation: expect_table_row_count_to_be_between, kwargs: {min_value: 1}}
  - {expectation: expect_column_mean_to_be_between, kwargs: {column: amount, min_value: 0, max_value: 10000}}
"""


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(rows),
            "customer": pd.Series([f"C{i:06d}" for i in rng.integers(0, 999_999, rows)]),
            "status": rng.choice(["new", "paid", "shipped", "returned"], rows),
            "amount": rng.uniform(1, 5000, rows).round(2),
            "quantity": rng.integers(1, 50, rows),
            "country": rng.choice(["DE", "FR", "NL", "BE", "AT", "CH"], rows),
        }
    )
    bad = rng.choice(rows, rows // 1000, replace=False)  # 0.1% bad rows, spread over the checks
    frame.loc[bad[0::3], "amount"] = -5.0
    frame.loc[bad[1::3], "status"] = "lost"
    frame.loc[bad[2::3], "customer"] = None
    return frame


def pandas_checks(frame: pd.DataFrame) -> dict[str, int]:
    """The same ten checks, hand-written: unexpected counts (table checks: 0/1)."""
    amount, customer = frame["amount"], frame["customer"]
    return {
        "amount_not_null": int(amount.isna().sum()),
        "customer_not_null": int(customer.isna().sum()),
        "amount_between": int((~amount.between(0, 10000) & amount.notna()).sum()),
        "quantity_between": int((~frame["quantity"].between(1, 100)).sum()),
        "status_in_set": int(
            (~frame["status"].isin(["new", "paid", "shipped", "returned"]) & frame["status"].notna()).sum()
        ),
        "country_in_set": int((~frame["country"].isin(["DE", "FR", "NL", "BE", "AT", "CH"])).sum()),
        "customer_regex": int((~customer.dropna().str.match(r"^C[0-9]{6}$")).sum()),
        "order_id_unique": int(frame["order_id"].duplicated(keep=False).sum()),
        "row_count": int(not len(frame) >= 1),
        "amount_mean": int(not 0 <= amount.mean() <= 10000),
    }


def main() -> None:
    from definitions_timing import report_definitions_import

    report_definitions_import()
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import = time.perf_counter() - started

    from lepton_pipelines.governance.checks import check_plans
    from lepton_pipelines.governance.resource import GreatExpectationsResource
    from lepton_pipelines.sources.registry import load_source_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_orders.yaml"
        path.write_text(textwrap.dedent(SOURCE_YAML))
        source, problems = load_source_file(path)
        assert source is not None, problems
    plans = check_plans(source)
    frame = make_frame(ROWS)
    resource = GreatExpectationsResource()
    started = time.perf_counter()
    resource.get_context()
    context_setup = time.perf_counter() - started

    resource.validate(source.name, frame.head(1000), plans)  # warm-up: first-use registrations, not per-partition cost
    started = time.perf_counter()
    suite = resource.validate(source.name, frame, plans)
    gx_seconds = time.perf_counter() - started

    started = time.perf_counter()
    baseline = pandas_checks(frame)
    pandas_seconds = time.perf_counter() - started

    gx_counts = [o.unexpected_count for o in suite.outcomes if o.unexpected_count is not None]
    hand_counts = [v for k, v in baseline.items() if k not in ("row_count", "amount_mean")]
    assert sorted(gx_counts) == sorted(hand_counts), (gx_counts, hand_counts)  # both did the same work
    ratio = gx_seconds / pandas_seconds
    print(f"rows: {ROWS:,}  expectations: {len(plans)}")
    print(f"GX import (once per process):   {gx_import:8.2f} s")
    print(f"GX ephemeral context setup:     {context_setup:8.3f} s")
    print(f"GX resource validation:         {gx_seconds:8.3f} s")
    print(f"pandas hand-written checks:     {pandas_seconds:8.3f} s")
    print(f"ratio GX / pandas:              {ratio:8.2f}x  (target <= 5x: {'met' if ratio <= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
