"""Translate a source's YAML ``expectations`` entries into GX 1.x expectation objects.

Every entry names a GX expectation by its snake_case name; GX's own registry and its pydantic models
are the single source of truth for what exists and which kwargs are valid, so a new GX release brings
new expectations without touching this file. Great Expectations is imported inside the functions:
it costs seconds to import, and only definitions load and validation runs need it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lepton_pipelines.sources.spec import ExpectationSpec, GovernancePolicy, SourceSpec

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

Scope = Literal["row", "table"]

# Map expectations whose unexpected rows are only unexpected *together* (a duplicate is a property of
# the set, a non-monotonic value of the ordering): removing single rows would not fix them, so they
# block like table-level expectations instead of quarantining rows.
SET_SCOPED_MAP_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_multicolumn_values_to_be_unique",
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
    }
)
# Expectations that need a SQL data source or a second table; a pandas partition cannot run them.
NOT_FOR_DATAFRAMES = frozenset({"expect_query_results_to_match_comparison", "expect_table_row_count_to_equal_other_table"})
COLUMN_KWARGS = ("column", "column_A", "column_B")
COLUMN_LIST_KWARGS = ("column_list",)
# Set by the pipeline, never by YAML: GX fills batch_id; result_format is chosen per validation run.
RESERVED_KWARGS = ("batch_id", "result_format")
GX_SEVERITY = {"error": "critical", "warn": "warning"}


@dataclass(frozen=True)
class CheckPlan:
    """How one YAML entry behaves as a Dagster check: blocking or quarantining, and its scope."""

    entry: ExpectationSpec
    scope: Scope
    quarantines: bool  # failing rows leave the governed table instead of failing the run
    blocking: bool

    @property
    def check_name(self) -> str:
        return self.entry.check_name


def available_expectations() -> list[str]:
    import great_expectations  # noqa: F401  (registers the core expectations)
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return sorted(
        n for n in list_registered_expectation_implementations() if n.startswith("expect_") and n not in NOT_FOR_DATAFRAMES
    )


def expectation_class(name: str) -> type["Expectation"] | None:
    import great_expectations  # noqa: F401
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    if name in NOT_FOR_DATAFRAMES:
        return None
    try:
        return get_expectation_impl(name)
    except ExpectationNotFoundError:
        return None


def build_expectation(entry: ExpectationSpec) -> "Expectation":
    cls = expectation_class(entry.expectation)
    if cls is None:
        raise ValueError(f"unknown expectation {entry.expectation!r}")
    return cls(**entry.kwargs, severity=GX_SEVERITY[entry.severity])


def expectation_scope(entry: ExpectationSpec) -> Scope:
    """Row-level when GX can name the failing rows and removing them would fix the failure."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    cls = expectation_class(entry.expectation)
    is_map = cls is not None and issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))
    return "row" if is_map and entry.expectation not in SET_SCOPED_MAP_EXPECTATIONS else "table"


def plan_check(entry: ExpectationSpec, policy: GovernancePolicy) -> CheckPlan:
    """WARN entries only report. ERROR row-level entries quarantine (policy ``quarantine``, the check
    then warns with the quarantined count) or block (policy ``block``); ERROR table-level entries block."""
    scope = expectation_scope(entry)
    quarantines = entry.severity == "error" and scope == "row" and policy.row_failures == "quarantine"
    return CheckPlan(entry=entry, scope=scope, quarantines=quarantines, blocking=entry.severity == "error" and not quarantines)


def expectation_problems(entry: ExpectationSpec, spec: SourceSpec) -> list[str]:
    """Load-time problems of one entry, each saying what is allowed (the registry adds file and index)."""
    cls = expectation_class(entry.expectation)
    if cls is None:
        close = difflib.get_close_matches(entry.expectation, available_expectations(), n=3, cutoff=0.75)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        return [
            f"unknown expectation {entry.expectation!r}: not a GX {_gx_version()} expectation usable on a DataFrame"
            f"{hint} (all: https://greatexpectations.io/expectations/)"
        ]
    problems = [f"kwargs.{k}: set by the pipeline, remove it from the YAML" for k in RESERVED_KWARGS if k in entry.kwargs]
    if "severity" in entry.kwargs:
        problems.append("kwargs.severity: use the entry's `severity: error|warn`, not a GX kwarg")
    if problems:
        return problems
    problems.extend(_unknown_columns(entry, spec))
    try:
        cls(**entry.kwargs)
    except Exception as exc:  # GX models raise pydantic v1 ValidationError; other errors are config errors too
        problems.extend(_describe_gx_error(exc, cls))
    return problems


def _unknown_columns(entry: ExpectationSpec, spec: SourceSpec) -> list[str]:
    declared = [c.name for c in spec.columns]
    problems = []
    for key in COLUMN_KWARGS:
        value = entry.kwargs.get(key)
        if isinstance(value, str) and value not in declared:
            problems.append(f"kwargs.{key}: column {value!r} is not in the schema; declared columns: {', '.join(declared)}")
    for key in COLUMN_LIST_KWARGS:
        for value in entry.kwargs.get(key) or []:
            if value not in declared:
                problems.append(f"kwargs.{key}: column {value!r} is not in the schema; declared columns: {', '.join(declared)}")
    return problems


def _describe_gx_error(exc: Exception, cls: type) -> list[str]:
    allowed = sorted(f for f in getattr(cls, "__fields__", {}) if f not in (*RESERVED_KWARGS, "severity", "id", "meta", "notes", "rendered_content", "description", "windows", "catch_exceptions"))
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [f"kwargs: {exc} (allowed kwargs: {', '.join(allowed)})"]
    by_field: dict[str, list[str]] = {}
    for err in errors():
        field = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "(entry)"
        by_field.setdefault(field, []).append(err.get("msg", "invalid"))
    problems = []
    for field, messages in by_field.items():
        if "extra fields not permitted" in messages:
            problems.append(f"kwargs.{field}: unknown kwarg for {cls.__name__}; allowed kwargs: {', '.join(allowed)}")
        elif "field required" in messages:
            problems.append(f"kwargs.{field}: required kwarg is missing")
        else:
            # A Union-typed field yields one message per alternative; keep them short but complete.
            problems.append(f"kwargs.{field}: {' or '.join(dict.fromkeys(messages))}")
    return problems


def _gx_version() -> str:
    import great_expectations

    return great_expectations.__version__
