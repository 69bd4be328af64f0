"""Load-time checks of expectation kwargs against the declared schema — what GX itself only finds at run time.

GX 1.x accepts ``regex: "[unclosed"`` and ``expect_column_values_to_be_between`` on a text column when the
suite is built; it fails only when it evaluates them, inside the validation. The pipeline treats such a
failure as a blocking error (it certifies nothing), but a person should hear about it when the registry
loads, beside the other registry problems, not at 2 a.m. on the first partition. No GX import here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from lepton_pipelines.contract.spec import ExpectationSpec, SourceSpec, type_kind

NUMERIC = ("integer", "float", "decimal")
ORDERED = (*NUMERIC, "timestamp", "date")
# Expectations whose column must hold ordered values (numbers or times), with the kwargs bounding them.
ORDERED_EXPECTATIONS = {
    "expect_column_values_to_be_between": ("min_value", "max_value"),
    "expect_column_min_to_be_between": ("min_value", "max_value"),
    "expect_column_max_to_be_between": ("min_value", "max_value"),
}
NUMERIC_EXPECTATIONS = {
    "expect_column_mean_to_be_between": ("min_value", "max_value"),
    "expect_column_median_to_be_between": ("min_value", "max_value"),
    "expect_column_sum_to_be_between": ("min_value", "max_value"),
    "expect_column_stdev_to_be_between": ("min_value", "max_value"),
}
TEXT_EXPECTATIONS = {
    "expect_column_values_to_match_regex": ("regex",),
    "expect_column_values_to_not_match_regex": ("regex",),
    "expect_column_values_to_match_regex_list": ("regex_list",),
    "expect_column_values_to_not_match_regex_list": ("regex_list",),
    "expect_column_value_lengths_to_be_between": (),
    "expect_column_value_lengths_to_equal": (),
}
SET_EXPECTATIONS = (
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_distinct_values_to_contain_set",
    "expect_column_distinct_values_to_equal_set",
)


def lint_expectation(entry: ExpectationSpec, spec: SourceSpec) -> list[str]:
    """Problems of one entry that can be known before any data: invalid regexes, kwargs whose kind does
    not fit the column's declared type. Each names the kwarg, the column and its type."""
    problems = _regex_problems(entry)
    column_name = entry.kwargs.get("column")
    declared = {c.name: c for c in spec.columns}
    if not isinstance(column_name, str) or column_name not in declared:
        return problems
    column = declared[column_name]
    kind = type_kind(column.type)
    name = entry.expectation
    if name in ORDERED_EXPECTATIONS and kind not in ORDERED:
        problems.append(
            f"column {column_name!r} is declared {column.type}; {name} compares numbers or times "
            f"(declare the column as integer, float, decimal, timestamp or date, or use a set/regex expectation)"
        )
    elif name in NUMERIC_EXPECTATIONS and kind not in NUMERIC:
        problems.append(f"column {column_name!r} is declared {column.type}; {name} needs a numeric column")
    elif name in TEXT_EXPECTATIONS and kind not in ("string", "json"):
        problems.append(f"column {column_name!r} is declared {column.type}; {name} works on text columns")
    for key in ORDERED_EXPECTATIONS.get(name, ()) + NUMERIC_EXPECTATIONS.get(name, ()):
        value = entry.kwargs.get(key)
        if value is not None and not _bound_fits(value, kind):
            problems.append(
                f"kwargs.{key}: {value!r} does not fit {column.type} column {column_name!r}"
                + (" (times: an ISO-8601 string, quoted in YAML)" if kind in ("timestamp", "date") else "")
            )
    if name in SET_EXPECTATIONS:
        wrong = [v for v in entry.kwargs.get("value_set") or [] if v is not None and not _member_fits(v, kind)]
        if wrong:
            problems.append(
                f"kwargs.value_set: {wrong[:5]!r} do not fit {column.type} column {column_name!r}"
                + (" (quote numbers that are codes: '001')" if kind == "string" else "")
            )
    return problems


def _regex_problems(entry: ExpectationSpec) -> list[str]:
    problems = []
    patterns: list[tuple[str, Any]] = []
    if "regex" in entry.kwargs:
        patterns.append(("regex", entry.kwargs["regex"]))
    for index, pattern in enumerate(entry.kwargs.get("regex_list") or []):
        patterns.append((f"regex_list[{index}]", pattern))
    for key, pattern in patterns:
        if not isinstance(pattern, str):
            problems.append(f"kwargs.{key}: a regular expression must be text, got {pattern!r}")
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"kwargs.{key}: {pattern!r} is not a valid regular expression: {exc}")
    return problems


def _bound_fits(value: Any, kind: str) -> bool:
    if kind in NUMERIC:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("timestamp", "date"):
        if isinstance(value, (date, datetime)):
            return True
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
                return True
            except ValueError:
                return False
        return False
    return True


def _member_fits(value: Any, kind: str) -> bool:
    if kind in ("string", "json"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("float", "decimal"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return True
