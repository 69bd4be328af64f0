"""Run a source's expectation suite on one DataFrame with GX 1.x and reduce each result to the few
numbers a user and the quarantine step need: passed, observed value, unexpected count/percent, a small
sample, and (for row-level expectations) the positions of the failing rows.

No Dagster here: the resource owns the GX context, the checks module turns outcomes into check results.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lepton_pipelines.governance.expectations import COLUMN_KWARGS, COLUMN_LIST_KWARGS, CheckPlan, build_expectation

SAMPLE_SIZE = 10
DATA_SOURCE = "lepton"  # the GX pandas data source validations add to the (ephemeral) context
CHECK_META_KEY = "lepton_check"
# Keys whose full lists would make the stored GX JSON as large as the data; the sample stays.
_BULKY_RESULT_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query", "unexpected_rows")


@dataclass
class ExpectationOutcome:
    plan: CheckPlan
    passed: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    sample: list[Any] = field(default_factory=list)
    failing_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # row positions
    config: dict[str, Any] = field(default_factory=dict)  # the GX expectation configuration as run
    error: str | None = None  # GX raised while evaluating (e.g. wrong dtype for the expectation)

    @property
    def check_name(self) -> str:
        return self.plan.check_name


@dataclass
class SuiteOutcome:
    outcomes: list[ExpectationOutcome]
    gx_result: dict[str, Any]  # GX's JSON result, with the bulky per-row lists removed


def validate_with_gx(
    context: Any,
    source: str,
    frame: pd.DataFrame,
    plans: list[CheckPlan],
    sample_size: int = SAMPLE_SIZE,
    fingerprint_max_bytes: int | None = None,
    keep_data_source: bool = False,
) -> SuiteOutcome:
    """Validate ``frame`` (positions are row numbers: the index is reset) against ``plans``.

    Row-level expectations need every failing row position (COMPLETE result format); GX returns it as
    ``unexpected_index_list`` on pandas. Everything runs in one ``batch.validate`` so metrics are shared.
    ``fingerprint_max_bytes``: see ``batch_fingerprint_limit`` (None: GX's own threshold).
    ``keep_data_source``: leave the data source for the next validation (the caller removes it).
    """
    import great_expectations as gx

    if not plans:
        return SuiteOutcome([], {"success": True, "results": [], "statistics": {"evaluated_expectations": 0}})
    frame = frame.reset_index(drop=True)
    needed = validated_columns(frame, plans)
    if needed is not None:
        frame = frame[needed]
    sources = context.data_sources.all()
    existing = sources[DATA_SOURCE] if keep_data_source and DATA_SOURCE in sources else None
    datasource = existing or context.data_sources.add_or_update_pandas(name=DATA_SOURCE)
    asset = next((a for a in datasource.assets if a.name == source), None) or datasource.add_dataframe_asset(
        name=source
    )
    batch_definition = next(
        (b for b in asset.batch_definitions if b.name == "whole"), None
    ) or asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=f"{source}.{uuid.uuid4().hex[:8]}")
    for plan in plans:
        expectation = build_expectation(plan.entry)
        expectation.meta = {**(expectation.meta or {}), CHECK_META_KEY: plan.check_name}
        suite.add_expectation(expectation)
    batch = None
    try:
        with batch_fingerprint_limit(fingerprint_max_bytes):  # GX builds the batch twice: here and in validate
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(
                suite, result_format={"result_format": "COMPLETE", "partial_unexpected_count": sample_size}
            )
    finally:
        # The data source's execution engine caches the batch's DataFrame until the next validation: dropping
        # the data source frees a whole partition for the rest of the run (the context lives per process).
        del batch
        if not keep_data_source:
            context.data_sources.delete(datasource.name)
        # GX's batch objects still reference this frame from reference cycles that live until the cycle
        # collector runs (a full collection costs ~0.3 s in a Dagster process). Emptying our own copy
        # (the caller's frame is untouched) frees its columns now instead of in some later step.
        for name in list(frame.columns):
            del frame[name]
    payload = result.to_json_dict()
    # GX orders results by domain, not by suite order: match them back through the meta tag.
    by_check = {r["expectation_config"]["meta"][CHECK_META_KEY]: r for r in payload["results"]}
    outcomes = [_outcome(plan, by_check[plan.check_name], sample_size) for plan in plans]
    for r in payload["results"]:
        r["result"] = {k: v for k, v in (r.get("result") or {}).items() if k not in _BULKY_RESULT_KEYS}
    return SuiteOutcome(outcomes, _json_safe(payload))


# Table-level expectations whose result does not depend on which columns the table has.
COLUMN_BLIND_EXPECTATIONS = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
# Kwargs that make an expectation look at columns besides the ones it names, or at their positions.
_WHOLE_TABLE_KWARGS = frozenset({"row_condition", "condition_parser", "column_index"})


def validated_columns(frame: pd.DataFrame, plans: list[CheckPlan]) -> list[str] | None:
    """The columns of ``frame`` the suite reads, in frame order; None when it may read any of them.

    Why: for each column-map expectation GX copies the batch's rows whose value is not null, then the
    failing ones (``get_domain_records`` + boolean filters) — every column of the batch, to keep one.
    Handing GX only the columns the suite names makes those copies proportionally smaller, and leaves
    every result as it was: a column expectation reads its own columns, a row count no column. Any
    expectation that could read more (a ``row_condition``, a column position, a table-wide check such as
    ``expect_table_columns_to_match_set``) gets the whole frame.
    """
    named: set[str] = set()
    for plan in plans:
        kwargs = plan.entry.kwargs
        if _WHOLE_TABLE_KWARGS & kwargs.keys():
            return None
        columns = [kwargs[k] for k in COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
        columns += [c for k in COLUMN_LIST_KWARGS for c in kwargs.get(k) or [] if isinstance(c, str)]
        if not columns and plan.entry.expectation not in COLUMN_BLIND_EXPECTATIONS:
            return None
        named.update(columns)
    return [c for c in frame.columns if c in named] if named else None


_FINGERPRINT_SETTING = threading.Lock()


@contextmanager
def batch_fingerprint_limit(max_bytes: int | None) -> Iterator[None]:
    """GX hashes every in-memory batch smaller than ``max_bytes`` into its batch markers each time it builds
    the batch — twice per validation (``get_batch``, then again inside ``batch.validate``): about half the
    validation time of a 1M-row partition, while the pipeline keeps its own fingerprint of each frame.

    GX 1.x has no setting for this — not in the context config, the data source, the execution engine's
    options or the batch parameters: ``PandasExecutionEngine.get_batch_data_and_markers`` reads the module
    global ``pandas_execution_engine.HASH_THRESHOLD``. So the global is confined to our validation: set on
    entry, restored on exit, under a lock, so GX used elsewhere in the process sees GX's own value and two
    validations never restore each other's. (Validations of one process already run one at a time: they
    share the context's ``lepton`` data source.)
    """
    if max_bytes is None:
        yield
        return
    from great_expectations.execution_engine import pandas_execution_engine

    with _FINGERPRINT_SETTING:
        previous = pandas_execution_engine.HASH_THRESHOLD
        pandas_execution_engine.HASH_THRESHOLD = max_bytes
        try:
            yield
        finally:
            pandas_execution_engine.HASH_THRESHOLD = previous


def _outcome(plan: CheckPlan, result: dict[str, Any], sample_size: int) -> ExpectationOutcome:
    body = result.get("result") or {}
    error = gx_exception(result.get("exception_info"))
    failing = (
        np.asarray(body.get("unexpected_index_list") or [], dtype=np.int64)
        if plan.scope == "row"
        else np.empty(0, dtype=np.int64)
    )
    percent = body.get("unexpected_percent")
    return ExpectationOutcome(
        plan=plan,
        passed=bool(result.get("success")) and error is None,
        observed=_json_safe(body.get("observed_value")),
        unexpected_count=_int_or_none(body.get("unexpected_count")),
        unexpected_percent=None if percent is None else float(percent),
        element_count=_int_or_none(body.get("element_count")),
        sample=_json_safe(list(body.get("partial_unexpected_list") or [])[:sample_size]),
        failing_rows=np.unique(failing),
        config=_json_safe(result.get("expectation_config") or {}),
        error=error,
    )


def gx_exception(info: Any) -> str | None:
    """GX's message when it could not evaluate an expectation, wherever GX put it.

    GX 1.x reports a failure to compute at the top level of ``exception_info`` for some expectations and
    nested per metric (``{"<metric id>": {"raised_exception": true, ...}}``) for others; an expectation
    that raised must never read as a plain failure with ``observed None`` — or, worse, as a pass."""
    messages: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("raised_exception"):
                messages.append(str(node.get("exception_message") or "GX raised an exception (no message)"))
                return
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(info)
    return "; ".join(dict.fromkeys(messages)) or None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _json_safe(value: Any) -> Any:
    """GX results carry numpy scalars, Timestamps and NaN; metadata and JSON files need plain values.

    NaN becomes null by walking the value (``_nan_to_none``), never by rewriting the serialized text: a
    string value that contains "NaN" stays as it is."""
    return _nan_to_none(json.loads(json.dumps(value, default=_default, allow_nan=True)))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        item = value.item()
        return None if isinstance(item, float) and math.isnan(item) else item
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)
