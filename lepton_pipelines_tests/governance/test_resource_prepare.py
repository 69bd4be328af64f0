"""GX is prepared off the critical path: a run that initializes the resource starts importing GX and
building the context on a background thread; validation then uses that one context."""
from __future__ import annotations

import time

import dagster as dg
import pandas as pd

from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.governance.expectations import plan_check
from lepton_pipelines.sources.spec import ExpectationSpec, GovernancePolicy


def test_run_start_prepares_the_gx_context_in_the_background_and_validation_uses_it():
    seen = {}

    @dg.asset
    def probe(gx: GreatExpectationsResource):
        deadline = time.monotonic() + 120
        while gx._context is None and time.monotonic() < deadline:  # prepared without anyone asking
            time.sleep(0.05)
        prepared = gx._context
        plan = plan_check(ExpectationSpec(expectation="expect_column_values_to_not_be_null", kwargs={"column": "a"}),
                          GovernancePolicy())
        outcome = gx.validate("probe", pd.DataFrame({"a": [1, None, 3]}), [plan])
        seen.update(prepared=prepared, after=gx._context, failing=outcome.outcomes[0].failing_rows.tolist())

    assert dg.materialize([probe], resources={"gx": GreatExpectationsResource()}).success
    assert seen["prepared"] is not None and seen["after"] is seen["prepared"]
    assert seen["failing"] == [1]
