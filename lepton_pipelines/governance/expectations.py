"""Translate a source's YAML ``expectations`` entries into GX 1.x expectation objects.

Every entry names a GX expectation by its snake_case name; GX's own registry and its pydantic models
are the single source of truth for what exists and which kwargs are valid, so a new GX release brings
new expectations without touching this file.

Great Expectations costs seconds to import, and definitions load happens in every process Dagster
starts (CLI, webserver reloads, each run worker). So load-time work — checking names, kwargs and value
constraints, planning each check's scope — reads ``expectations_manifest.json``, generated from the
installed GX by ``governance.gx_manifest`` (a test regenerates it and compares). Only when the
installed GX is not the version the manifest was made from does load ask GX itself. The steps that
validate data import GX (``build_expectation``).
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Literal

from lepton_pipelines.contract.spec import ExpectationSpec, GovernancePolicy, SourceSpec

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
NOT_FOR_DATAFRAMES = frozenset(
    {"expect_query_results_to_match_comparison", "expect_table_row_count_to_equal_other_table"}
)
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


MANIFEST_FILE = "expectations_manifest.json"
# Fields every expectation inherits; accepted in YAML, but not worth listing as "allowed kwargs".
BASE_FIELDS = (
    *RESERVED_KWARGS,
    "severity",
    "id",
    "meta",
    "notes",
    "rendered_content",
    "description",
    "windows",
    "catch_exceptions",
)


@functools.lru_cache(maxsize=1)
def gx_manifest() -> dict[str, Any] | None:
    """The manifest's expectations when it was generated from the installed GX version, else None
    (then load asks GX itself: slower, never wrong)."""
    from pathlib import Path

    manifest = json.loads((Path(__file__).with_name(MANIFEST_FILE)).read_text())
    try:
        installed = importlib_metadata.version("great_expectations")
    except importlib_metadata.PackageNotFoundError:
        installed = None
    if manifest.get("great_expectations") != installed:
        return None
    return manifest["expectations"]


def available_expectations() -> list[str]:
    manifest = gx_manifest()
    if manifest is not None:
        return sorted(manifest)
    import great_expectations  # noqa: F401  (registers the core expectations)
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return sorted(
        n
        for n in list_registered_expectation_implementations()
        if n.startswith("expect_") and n not in NOT_FOR_DATAFRAMES
    )


def expectation_class(name: str) -> type[Expectation] | None:
    import great_expectations  # noqa: F401
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    if name in NOT_FOR_DATAFRAMES:
        return None
    try:
        return get_expectation_impl(name)
    except ExpectationNotFoundError:
        return None


def build_expectation(entry: ExpectationSpec) -> Expectation:
    cls = expectation_class(entry.expectation)
    if cls is None:
        raise ValueError(f"unknown expectation {entry.expectation!r}")
    try:
        return cls(**entry.kwargs, severity=GX_SEVERITY[entry.severity])
    except Exception as exc:  # e.g. a cross-field rule of GX's model that the load-time manifest cannot express
        raise ValueError(
            f"expectation {entry.check_name!r} ({entry.expectation}): " + "; ".join(_describe_gx_error(exc, cls))
        ) from exc


def expectation_scope(entry: ExpectationSpec) -> Scope:
    """Row-level when GX can name the failing rows and removing them would fix the failure."""
    manifest = gx_manifest()
    if manifest is not None:
        known = manifest.get(entry.expectation)
        is_map = known is not None and known["map"]
        return "row" if is_map and entry.expectation not in SET_SCOPED_MAP_EXPECTATIONS else "table"
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    cls = expectation_class(entry.expectation)
    is_map = cls is not None and issubclass(
        cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    )
    return "row" if is_map and entry.expectation not in SET_SCOPED_MAP_EXPECTATIONS else "table"


def plan_check(entry: ExpectationSpec, policy: GovernancePolicy) -> CheckPlan:
    """WARN entries only report. ERROR row-level entries quarantine (policy ``quarantine``, the check
    then warns with the quarantined count) or block (policy ``block``); ERROR table-level entries block."""
    scope = expectation_scope(entry)
    quarantines = entry.severity == "error" and scope == "row" and policy.row_failures == "quarantine"
    return CheckPlan(
        entry=entry, scope=scope, quarantines=quarantines, blocking=entry.severity == "error" and not quarantines
    )


def expectation_problems(entry: ExpectationSpec, spec: SourceSpec) -> list[str]:
    """Load-time problems of one entry, each saying what is allowed (the registry adds file and index)."""
    manifest = gx_manifest()
    known = manifest.get(entry.expectation) if manifest is not None else None
    cls = None if manifest is not None else expectation_class(entry.expectation)
    if known is None and cls is None:
        close = difflib.get_close_matches(entry.expectation, available_expectations(), n=3, cutoff=0.75)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        return [
            f"unknown expectation {entry.expectation!r}: not a GX {_gx_version()} expectation usable on a DataFrame"
            f"{hint} (all: https://greatexpectations.io/expectations/)"
        ]
    problems = [
        f"kwargs.{k}: set by the pipeline, remove it from the YAML" for k in RESERVED_KWARGS if k in entry.kwargs
    ]
    if "severity" in entry.kwargs:
        problems.append("kwargs.severity: use the entry's `severity: error|warn`, not a GX kwarg")
    if problems:
        return problems
    problems.extend(_unknown_columns(entry, spec))
    if known is not None:
        problems.extend(_manifest_kwarg_problems(entry, known))
        return problems
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
            problems.append(
                f"kwargs.{key}: column {value!r} is not in the schema; declared columns: {', '.join(declared)}"
            )
    for key in COLUMN_LIST_KWARGS:
        for value in entry.kwargs.get(key) or []:
            if value not in declared:
                problems.append(
                    f"kwargs.{key}: column {value!r} is not in the schema; declared columns: {', '.join(declared)}"
                )
    return problems


def _manifest_kwarg_problems(entry: ExpectationSpec, known: dict[str, Any]) -> list[str]:
    """What GX's model would reject, said the way GX (pydantic) says it: unknown and missing kwargs,
    numeric bounds, permitted literals, and list/dict/scalar shape. Anything subtler is left to GX when
    the suite is built in the step."""
    allowed = sorted(f for f in known["fields"] if f not in BASE_FIELDS)
    problems = []
    for key in entry.kwargs:
        if key not in known["fields"]:
            problems.append(f"kwargs.{key}: unknown kwarg for {known['class']}; allowed kwargs: {', '.join(allowed)}")
    for key in known["required"]:
        if key not in entry.kwargs:
            problems.append(f"kwargs.{key}: required kwarg is missing")
    for key, value in entry.kwargs.items():
        constraint = known["constraints"].get(key)
        if constraint and value is not None:
            problems.extend(f"kwargs.{key}: {p}" for p in _constraint_problems(value, constraint))
    return problems


_BOUND_TEXT = {"ge": "greater than or equal to", "gt": "greater than", "le": "less than or equal to", "lt": "less than"}
_BOUND_OK = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}


def _constraint_problems(value: Any, constraint: dict[str, Any]) -> list[str]:
    kind = "list" if isinstance(value, (list, tuple)) else "dict" if isinstance(value, dict) else "scalar"
    kinds = constraint.get("kinds")
    if kinds and kind not in kinds:
        return [
            f"expected {' or '.join('a ' + k if k != 'scalar' else 'a single value' for k in kinds)}, got a "
            f"{kind if kind != 'scalar' else 'single value'}"
        ]
    if "enum" in constraint and kind == "scalar" and value not in constraint["enum"]:
        return [f"unexpected value; permitted: {', '.join(repr(v) for v in constraint['enum'])}"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [
            f"ensure this value is {_BOUND_TEXT[b]} {constraint[b]:g}"
            for b in _BOUND_TEXT
            if b in constraint and not _BOUND_OK[b](value, constraint[b])
        ]
    return []


def _describe_gx_error(exc: Exception, cls: type) -> list[str]:
    allowed = sorted(f for f in getattr(cls, "__fields__", {}) if f not in BASE_FIELDS)
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
    return importlib_metadata.version("great_expectations")
