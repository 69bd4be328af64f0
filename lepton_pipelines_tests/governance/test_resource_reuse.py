"""A range step validates its partitions one by one through one GX data source (``reusing_data_source``):
the outcomes are those of separate validations, and the data source is gone when the block ends."""

from __future__ import annotations

import pandas as pd

from lepton_pipelines.contract.spec import ExpectationSpec, GovernancePolicy
from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.governance.expectations import plan_check
from lepton_pipelines.governance.validation import DATA_SOURCE

PLANS = [
    plan_check(
        ExpectationSpec(expectation="expect_column_values_to_not_be_null", kwargs={"column": "a"}), GovernancePolicy()
    ),
    plan_check(
        ExpectationSpec(expectation="expect_column_mean_to_be_between", kwargs={"column": "a", "max_value": 2}),
        GovernancePolicy(),
    ),
]
PARTITIONS = [
    pd.DataFrame({"a": [1.0, None, 3.0]}),
    pd.DataFrame({"a": [1.0, 1.0]}),
    pd.DataFrame({"a": [None, 5.0, 9.0, None]}),
]


def _summary(outcome) -> list[tuple]:
    return [
        (o.check_name, o.passed, o.observed, o.unexpected_count, o.element_count, o.failing_rows.tolist())
        for o in outcome.outcomes
    ]


def test_reused_data_source_gives_the_outcomes_of_separate_validations_and_is_removed():
    separate = [_summary(GreatExpectationsResource().validate("probe", frame, PLANS)) for frame in PARTITIONS]
    gx = GreatExpectationsResource()
    with gx.reusing_data_source():
        reused = []
        for frame in PARTITIONS:
            reused.append(_summary(gx.validate("probe", frame, PLANS)))
            assert DATA_SOURCE in gx.get_context().data_sources.all()  # kept for the next partition
    assert reused == separate
    assert separate[0][0][5] == [1] and separate[2][1][1] is False  # the probes do fail where expected
    assert DATA_SOURCE not in gx.get_context().data_sources.all()
