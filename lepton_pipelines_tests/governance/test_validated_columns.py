"""GX is handed only the columns the suite names (``validation.validated_columns``), and that changes no
outcome: the results equal those of validating the whole frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lepton_pipelines.contract.spec import ExpectationSpec, GovernancePolicy
from lepton_pipelines.governance import GreatExpectationsResource
from lepton_pipelines.governance.expectations import plan_check
from lepton_pipelines.governance.validation import validated_columns


def _plan(expectation: str, **kwargs):
    return plan_check(ExpectationSpec(expectation=expectation, kwargs=kwargs), GovernancePolicy())


FRAME = pd.DataFrame(
    {
        "a": [1.0, None, 3.0, 40.0],
        "b": pd.array(["x", "y", None, "zz"], dtype="str"),
        "c": [True, False, True, False],
        "d": pd.array(["p", "q", "r", "s"], dtype="str"),
    }
)


def test_named_columns_only_in_frame_order():
    plans = [
        _plan("expect_column_values_to_be_in_set", column="b", value_set=["x", "y"]),
        _plan("expect_column_values_to_be_between", column="a", min_value=0, max_value=10),
        _plan("expect_table_row_count_to_be_between", min_value=1),
    ]
    assert validated_columns(FRAME, plans) == ["a", "b"]


def test_whole_frame_when_an_expectation_may_read_other_columns():
    in_set = _plan("expect_column_values_to_be_in_set", column="b", value_set=["x"])
    for other in (
        _plan("expect_table_columns_to_match_set", column_set=["a", "b", "c", "d"]),
        _plan("expect_column_to_exist", column="b", column_index=1),
        _plan("expect_column_values_to_not_be_null", column="b", row_condition="c == True", condition_parser="pandas"),
    ):
        assert validated_columns(FRAME, [in_set, other]) is None
    assert validated_columns(FRAME, [_plan("expect_table_row_count_to_be_between", min_value=1)]) is None


def _summary(outcome) -> list[tuple]:
    return [
        (o.check_name, o.passed, o.observed, o.unexpected_count, o.element_count, o.sample, o.failing_rows.tolist())
        for o in outcome.outcomes
    ]


def test_outcomes_equal_those_of_the_whole_frame():
    plans = [
        _plan("expect_column_values_to_not_be_null", column="a"),
        _plan("expect_column_values_to_be_between", column="a", min_value=0, max_value=10),
        _plan("expect_column_values_to_be_in_set", column="b", value_set=["x", "y"]),
        _plan("expect_column_values_to_match_regex", column="b", regex="^[a-z]$"),
        _plan("expect_table_row_count_to_be_between", min_value=1, max_value=3),
    ]
    subset = GreatExpectationsResource().validate("t", FRAME, plans)
    # a table-wide expectation makes the suite read the whole frame: the other outcomes must not change
    whole_plans = [*plans, _plan("expect_table_column_count_to_equal", value=4)]
    assert validated_columns(FRAME, whole_plans) is None
    whole = GreatExpectationsResource().validate("t", FRAME, whole_plans)
    assert _summary(subset) == _summary(whole)[: len(plans)]
    assert np.array_equal(subset.outcomes[1].failing_rows, [3])
