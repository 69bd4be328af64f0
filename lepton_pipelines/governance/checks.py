"""Governance as Dagster asset checks on ``<source>/raw``, ``/clean`` and ``/governed``: their specs, and
the check results built from measurements and verdicts (certification itself: ``certify.py``).

The asset factory yields these results from the asset ops themselves. Dagster 1.13 enforces
``blocking=True`` for such in-op results (``execute_step.py``: after the op finishes, any failed ERROR
check with ``blocking`` raises ``DagsterAssetCheckFailedError`` naming the checks, so the step fails and
downstream steps are skipped). Each failing check also carries *why* in its description and the step
log. ``certify`` re-checks the stored verdict, so a governed run launched on its own can never certify a
partition whose clean table failed a blocking check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd

from lepton_pipelines.cleaning.support import duplicated_rows
from lepton_pipelines.contract import SourceContract
from lepton_pipelines.governance import quality_store as store
from lepton_pipelines.governance.drift import compare_schemas
from lepton_pipelines.governance.expectations import CheckPlan, plan_check
from lepton_pipelines.governance.resource import GreatExpectationsResource
from lepton_pipelines.governance.validation import ExpectationOutcome, SuiteOutcome
from lepton_pipelines.lake.store import Lake

if TYPE_CHECKING:  # verdict types only: certify builds on this module
    from lepton_pipelines.governance.certify import Reconciliation, Retention

SCHEMA_DRIFT_CHECK = "schema_drift"
PARSE_ERRORS_CHECK = "parse_errors"
EMPTY_INPUT_CHECK = "empty_input"
PRIMARY_KEY_CHECK = "primary_key_unique"
REQUIRED_CHECK = "required_values"
LATE_ARRIVAL_CHECK = "late_arrival"
RECONCILIATION_CHECK = "reconciliation"
ROW_RETENTION_CHECK = "row_retention"
NEWEST_EVENT_TIME_KEY = "lepton/newest_event_time"
SAMPLE_KEYS = 5


@dataclass
class GovernanceContext:
    """What a governance step needs from the asset run that calls it."""

    source: SourceContract
    lake: Lake
    partition_key: str | None
    gx: GreatExpectationsResource
    log: logging.Logger | Any


def _key(source: SourceContract, zone: str) -> dg.AssetKey:
    return dg.AssetKey([source.name, zone])


def check_plans(source: SourceContract) -> list[CheckPlan]:
    return [plan_check(entry, source.spec.governance) for entry in source.spec.expectations]


# -- raw: schema drift, parse errors, empty input ----------------------------------------------------
def raw_check_specs(source: SourceContract) -> list[dg.AssetCheckSpec]:
    spec = source.spec
    policy = spec.governance.schema_drift
    policies = sorted({spec.parse_error_policy(c) for c in spec.columns})
    fails = "fail" in policies
    return [
        dg.AssetCheckSpec(
            SCHEMA_DRIFT_CHECK,
            asset=_key(source, "raw"),
            blocking=policy == "error",
            description="Landed columns match the declared schema: no added, removed or renamed "
            "column, and no column whose "
            f"values mostly fail to parse as its declared type; on drift: {policy.upper()}.",
        ),
        dg.AssetCheckSpec(
            PARSE_ERRORS_CHECK,
            asset=_key(source, "raw"),
            blocking=fails,
            description="Every landed value parses as its declared type and format. Values that do not are handled per "
            "column "
            f"(on_parse_error: {', '.join(policies)}): quarantine moves the row to quarantine/raw with the column, "
            "text and "
            "expected form; null keeps the row with the value in `_parse_errors`; fail stops the run. Warns when any "
            "value failed.",
        ),
        dg.AssetCheckSpec(
            EMPTY_INPUT_CHECK,
            asset=_key(source, "raw"),
            blocking=spec.governance.empty_input == "fail",
            description="Each landed file (or API/SQL window) holds at least one record; empty and "
            "header-only inputs are "
            "named "
            f"(empty_input: {spec.governance.empty_input}).",
        ),
    ]


def landed_column_schema(landed_schema: dict[str, str], descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The landed schema as Dagster column schema; put it on the raw materialization under
    ``dagster/column_schema`` so Dagster's column-schema-change checks can diff partitions."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(kind), description=descriptions.get(name)) for name, kind in landed_schema.items()
        ]
    )


@dataclass
class RawFindings:
    """What the raw step found, for its checks: computed by the step, judged here."""

    landed_schema: dict[str, str]  # landed column → type as it arrived (names drive drift)
    parse_failures: dict[str, int]
    non_null: dict[str, int]  # declared column → non-blank landed values
    parse_quarantined: int  # rows moved to quarantine/raw because a value did not parse
    parse_nulled: dict[str, int]  # column → values kept as null (on_parse_error: null)
    empty_inputs: list[str]  # files / windows without a record
    inputs: int
    rows: int  # rows in the raw table
    keyed_records: bool = False  # JSON objects: an optional key absent from every record is not drift


def evaluate_raw(ctx: GovernanceContext, findings: RawFindings) -> list[dg.AssetCheckResult]:
    spec = ctx.source.spec
    declared = {c.landed_name: c.type for c in spec.columns}
    by_landed = {c.name: c.landed_name for c in spec.columns}
    drift = compare_schemas(
        declared,
        list(findings.landed_schema),
        {by_landed[c]: n for c, n in findings.parse_failures.items()},
        {by_landed[c]: n for c, n in findings.non_null.items()},
        may_be_absent={c.landed_name for c in spec.columns if c.nullable} if findings.keyed_records else frozenset(),
    )
    if not findings.landed_schema:  # no input named a single column (empty or unreadable): nothing to judge;
        drift = compare_schemas(declared, list(declared), {}, {})  # empty_input and the row-loss guard report it
    error = spec.governance.schema_drift == "error"
    severity = dg.AssetCheckSeverity.ERROR if error else dg.AssetCheckSeverity.WARN
    description = f"{spec.name}: {drift.describe()}"
    if drift.drifted:
        ctx.log.log(
            logging.ERROR if error else logging.WARNING,
            f"{spec.name}/raw schema drift: {drift.describe()} (policy: {spec.governance.schema_drift})",
        )
    drift_result = dg.AssetCheckResult(
        check_name=SCHEMA_DRIFT_CHECK,
        asset_key=_key(ctx.source, "raw"),
        passed=not drift.drifted,
        severity=severity,
        description=description,
        metadata={
            "added_columns": dg.MetadataValue.json(drift.added),
            "removed_columns": dg.MetadataValue.json(drift.removed),
            "renamed_columns": dg.MetadataValue.json(drift.renamed),
            "retyped_columns": dg.MetadataValue.json(drift.retyped),
            "absent_optional_columns": dg.MetadataValue.json(drift.absent_optional),
            "landed_schema": dg.MetadataValue.table_schema(landed_column_schema(findings.landed_schema)),
            "declared_schema": dg.MetadataValue.table_schema(
                dg.TableSchema(columns=[dg.TableColumn(c.name, c.type) for c in spec.columns])
            ),
            "rows": findings.rows,
        },
    )
    failed_values = sum(findings.parse_failures.values())
    fail_columns = [
        c for c, n in findings.parse_failures.items() if n and spec.parse_error_policy(spec.column(c)) == "fail"
    ]
    parse_severity = dg.AssetCheckSeverity.ERROR if fail_columns else dg.AssetCheckSeverity.WARN
    parse_description = (
        "every landed value parsed as its declared type"
        if not failed_values
        else f"{failed_values} value(s) did not parse: "
        + ", ".join(f"{c} {n}" for c, n in findings.parse_failures.items())
        + f"; {findings.parse_quarantined} row(s) quarantined"
        + (
            f", {sum(findings.parse_nulled.values())} value(s) kept as null (on_parse_error: null)"
            if findings.parse_nulled
            else ""
        )
        + (f"; on_parse_error: fail for {', '.join(fail_columns)}" if fail_columns else "")
    )
    parse_result = dg.AssetCheckResult(
        check_name=PARSE_ERRORS_CHECK,
        asset_key=_key(ctx.source, "raw"),
        passed=failed_values == 0,
        severity=parse_severity,
        description=parse_description,
        metadata={
            "parse_failures": dg.MetadataValue.json(findings.parse_failures),
            "quarantined_rows": findings.parse_quarantined,
            "nulled_values": dg.MetadataValue.json(findings.parse_nulled),
            "unexpected_count": failed_values,
        },
    )
    empty_policy = spec.governance.empty_input
    empty_description = (
        "every input holds records"
        if not findings.empty_inputs
        else f"{len(findings.empty_inputs)} of {findings.inputs} input(s) without a record: "
        + ", ".join(findings.empty_inputs[:20])
        + f" (empty_input: {empty_policy})"
    )
    if findings.empty_inputs and empty_policy != "ok":
        ctx.log.warning(f"{spec.name}/raw: {empty_description}")
    empty_result = dg.AssetCheckResult(
        check_name=EMPTY_INPUT_CHECK,
        asset_key=_key(ctx.source, "raw"),
        passed=not findings.empty_inputs or empty_policy == "ok",
        severity=dg.AssetCheckSeverity.ERROR if empty_policy == "fail" else dg.AssetCheckSeverity.WARN,
        description=empty_description,
        metadata={"empty_inputs": dg.MetadataValue.json(findings.empty_inputs), "inputs": findings.inputs},
    )
    store.write_results(
        ctx.lake,
        spec.name,
        ctx.partition_key,
        "raw",
        [
            store.result_row(
                spec.name,
                ctx.partition_key,
                "raw",
                check_name=SCHEMA_DRIFT_CHECK,
                expectation="schema_drift",
                severity=severity.value,
                blocking=error,
                passed=not drift.drifted,
                observed={
                    "added": drift.added,
                    "removed": drift.removed,
                    "renamed": drift.renamed,
                    "retyped": drift.retyped,
                },
                description=description,
            ),
            store.result_row(
                spec.name,
                ctx.partition_key,
                "raw",
                check_name=PARSE_ERRORS_CHECK,
                expectation="parse_errors",
                severity=parse_severity.value,
                blocking=bool(fail_columns),
                passed=failed_values == 0,
                observed=findings.parse_failures,
                unexpected_count=failed_values,
                quarantined=findings.parse_quarantined,
                description=parse_description,
            ),
            store.result_row(
                spec.name,
                ctx.partition_key,
                "raw",
                check_name=EMPTY_INPUT_CHECK,
                expectation="empty_input",
                severity=empty_result.severity.value,
                blocking=empty_policy == "fail",
                passed=empty_result.passed,
                observed=findings.empty_inputs,
                description=empty_description,
            ),
        ],
    )
    return [drift_result, parse_result, empty_result]


# -- clean: expectations and primary key --------------------------------------------------------------
def clean_check_specs(source: SourceContract) -> list[dg.AssetCheckSpec]:
    specs = []
    for plan in check_plans(source):
        entry = plan.entry
        if plan.quarantines:
            action = (
                "quarantines failing rows (they leave governed; the count is in quarantined_rows); blocks "
                "governed if GX cannot evaluate it"
            )
        else:
            action = "blocks governed" if plan.blocking else "warns"
        text = entry.description or f"{entry.expectation} {entry.kwargs}"
        specs.append(
            dg.AssetCheckSpec(
                plan.check_name,
                asset=_key(source, "clean"),
                blocking=plan.blocking,
                description=f"{text} ({plan.scope}-level, {entry.severity}: {action})",
                metadata={
                    "gx_expectation": entry.expectation,
                    "gx_kwargs": dg.MetadataValue.json(entry.kwargs),
                    "lepton/action": "quarantine" if plan.quarantines else ("block" if plan.blocking else "warn"),
                },
            )
        )
    key = ", ".join(primary_key_columns(source))
    specs.append(
        dg.AssetCheckSpec(
            PRIMARY_KEY_CHECK,
            asset=_key(source, "clean"),
            blocking=True,
            description=f"No two rows share the primary key ({key}).",
            metadata={"lepton/action": "block"},
        )
    )
    required = [c.name for c in source.spec.columns if not c.nullable]
    specs.append(
        dg.AssetCheckSpec(
            REQUIRED_CHECK,
            asset=_key(source, "clean"),
            blocking=False,
            description="Row-level, quarantines: rows without a value in a required column "
            f"({', '.join(required) or 'none declared'}) "
            "move to quarantine/clean as '<column> is required'; warns with the count.",
            metadata={"lepton/action": "quarantine"},
        )
    )
    late = source.spec.governance.late_arrival
    if source.spec.event_time and source.spec.is_partitioned:
        specs.append(
            dg.AssetCheckSpec(
                LATE_ARRIVAL_CHECK,
                asset=_key(source, "clean"),
                blocking=False,
                description=f"Row-level: rows whose {source.spec.event_time} is outside the "
                "partition's day by more than "
                f"{late.tolerance} "
                f"are {'quarantined' if late.action == 'quarantine' else 'flagged (kept)'}; warns with the count.",
                metadata={"lepton/action": late.action},
            )
        )
    return specs


def contract_results(
    ctx: GovernanceContext, required_removed: int, required_sample: list[str], late: int, late_sample: list[str]
) -> list[dg.AssetCheckResult]:
    """The clean step's built-in row-level contract checks (see ``governance.contract``)."""
    spec = ctx.source.spec
    results = [
        dg.AssetCheckResult(
            check_name=REQUIRED_CHECK,
            asset_key=_key(ctx.source, "clean"),
            passed=required_removed == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "every required column has a value"
                if not required_removed
                else f"{required_removed} row(s) quarantined without a required value, e.g. "
                f"{required_sample[:SAMPLE_KEYS]}"
            ),
            metadata={
                "quarantined_rows": required_removed,
                "unexpected_sample": dg.MetadataValue.json(required_sample[:SAMPLE_KEYS]),
            },
        )
    ]
    rows = [
        store.result_row(
            spec.name,
            ctx.partition_key,
            "clean",
            check_name=REQUIRED_CHECK,
            expectation="required",
            severity="WARN",
            blocking=False,
            passed=required_removed == 0,
            unexpected_count=required_removed,
            quarantined=required_removed,
            description=results[0].description,
        )
    ]
    if spec.event_time and spec.is_partitioned:
        action = spec.governance.late_arrival.action
        description = (
            "every event time is within the partition's day (and the tolerance)"
            if not late
            else f"{late} row(s) {'quarantined' if action == 'quarantine' else 'flagged'}: e.g. "
            f"{late_sample[:SAMPLE_KEYS]}"
        )
        results.append(
            dg.AssetCheckResult(
                check_name=LATE_ARRIVAL_CHECK,
                asset_key=_key(ctx.source, "clean"),
                passed=late == 0,
                severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata={
                    "late_rows": late,
                    "quarantined_rows": late if action == "quarantine" else 0,
                    "action": action,
                    "unexpected_sample": dg.MetadataValue.json(late_sample[:SAMPLE_KEYS]),
                },
            )
        )
        rows.append(
            store.result_row(
                spec.name,
                ctx.partition_key,
                "clean",
                check_name=LATE_ARRIVAL_CHECK,
                expectation="late_arrival",
                severity="WARN",
                blocking=False,
                passed=late == 0,
                unexpected_count=late,
                quarantined=late if action == "quarantine" else 0,
                description=description,
            )
        )
    store.append_results(ctx.lake, spec.name, ctx.partition_key, "clean", rows)
    return results


def primary_key_columns(source: SourceContract) -> list[str]:
    """The declared key; without one, whole rows (declared columns) must be distinct."""
    return list(source.spec.primary_key) or [c.name for c in source.spec.columns]


def evaluate_clean(
    ctx: GovernanceContext, clean: pd.DataFrame, cleaning: dict, clean_file: str | None = None
) -> list[dg.AssetCheckResult]:
    """``clean_file``: ``lake.store.file_identity`` of the partition file ``clean`` was just written to.
    Given, the row failures are filed under it and certify matches them by the file it reads instead of
    hashing the table twice; without it they are filed under the frame's content fingerprint."""
    return record_clean(ctx, measure_clean(ctx, clean), clean_file).results


@dataclass
class CleanMeasurement:
    """What validating a clean table computed, before anything is logged or stored.

    Kept apart from ``record_clean`` so the computation can run beside the Parquet write of the same
    table (it touches no Dagster context, log or file), and only the recording waits for the file."""

    frame: pd.DataFrame  # the validated table, index reset (row positions are row numbers)
    suite: SuiteOutcome
    duplicated: np.ndarray | None  # primary-key duplicates (later occurrences); None: key columns missing
    missing_key_columns: list[str]


def measure_clean(ctx: GovernanceContext, clean: pd.DataFrame) -> CleanMeasurement:
    """Run the expectation suite and the primary-key check on ``clean``: pure computation."""
    spec = ctx.source.spec
    declared = [c.name for c in spec.columns]
    frame = clean.reset_index(drop=True)
    suite = ctx.gx.validate(spec.name, frame[[c for c in declared if c in frame.columns]], check_plans(ctx.source))
    key = primary_key_columns(ctx.source)
    missing = [c for c in key if c not in frame.columns]
    duplicated = None if missing else duplicated_rows(frame, key, keep="first")
    return CleanMeasurement(frame=frame, suite=suite, duplicated=duplicated, missing_key_columns=missing)


@dataclass
class _CleanVerdict:
    results: list[dg.AssetCheckResult]
    failures: dict[str, list[int]]  # quarantining check → failing row positions
    blocking_failures: list[str]  # "check: why"


def record_clean(ctx: GovernanceContext, measured: CleanMeasurement, clean_file: str | None) -> _CleanVerdict:
    """Turn a measurement into check results; log blocking failures; store results, the GX result and
    the row failures (filed under ``clean_file``, see ``evaluate_clean``)."""
    spec = ctx.source.spec
    declared = [c.name for c in spec.columns]
    suite = measured.suite
    results, rows, failures, blocking = [], [], {}, []
    for outcome in suite.outcomes:
        result, row = _expectation_result(ctx, outcome)
        results.append(result)
        rows.append(row)
        if outcome.plan.quarantines and not outcome.passed and not outcome.error:
            failures[outcome.check_name] = outcome.failing_rows.tolist()
        # An expectation GX could not evaluate certifies nothing: it blocks when declared at severity error,
        # whether it would have blocked or quarantined (which rows fail is unknown).
        if not outcome.passed and (outcome.plan.blocking or (outcome.error and outcome.plan.entry.severity == "error")):
            blocking.append(f"{outcome.check_name}: {result.description}")
    pk_result, pk_row = _primary_key_result(ctx, measured)
    results.append(pk_result)
    rows.append(pk_row)
    if not pk_result.passed:
        blocking.append(f"{PRIMARY_KEY_CHECK}: {pk_result.description}")
    for problem in blocking:
        ctx.log.error(f"{spec.name}/clean blocking check failed — {problem}")
    store.write_results(ctx.lake, spec.name, ctx.partition_key, "clean", rows)
    store.write_gx_result(ctx.lake, spec.name, ctx.partition_key, suite.gx_result)
    store.write_row_failures(
        ctx.lake, spec.name, ctx.partition_key, store.row_failures_key(measured.frame, declared, clean_file), failures
    )
    return _CleanVerdict(results, failures, blocking)


def _expectation_result(ctx: GovernanceContext, outcome: ExpectationOutcome) -> tuple[dg.AssetCheckResult, dict]:
    plan = outcome.plan
    quarantined = len(outcome.failing_rows) if plan.quarantines and not outcome.passed and not outcome.error else 0
    severity = dg.AssetCheckSeverity.ERROR if plan.blocking or outcome.error else dg.AssetCheckSeverity.WARN
    description = _describe_outcome(outcome, quarantined)
    metadata: dict[str, Any] = {
        "gx_expectation": dg.MetadataValue.json(outcome.config),
        "scope": plan.scope,
        "declared_severity": plan.entry.severity,
        "unexpected_sample": dg.MetadataValue.json(outcome.sample),
    }
    for name, value in (
        ("observed_value", outcome.observed),
        ("unexpected_count", outcome.unexpected_count),
        ("unexpected_percent", outcome.unexpected_percent),
        ("element_count", outcome.element_count),
        ("gx_error", outcome.error),
    ):
        if value is not None:
            metadata[name] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
    if plan.quarantines:
        metadata["quarantined_rows"] = quarantined
    result = dg.AssetCheckResult(
        check_name=plan.check_name,
        asset_key=_key(ctx.source, "clean"),
        passed=outcome.passed,
        severity=severity,
        description=description,
        metadata=metadata,
    )
    row = store.result_row(
        ctx.source.name,
        ctx.partition_key,
        "clean",
        check_name=plan.check_name,
        expectation=plan.entry.expectation,
        severity=severity.value,
        blocking=plan.blocking or bool(outcome.error and plan.entry.severity == "error"),
        passed=outcome.passed,
        observed=outcome.observed,
        unexpected_count=outcome.unexpected_count,
        unexpected_percent=outcome.unexpected_percent,
        quarantined=quarantined,
        description=description,
    )
    return result, row


def _describe_outcome(outcome: ExpectationOutcome, quarantined: int) -> str:
    entry = outcome.plan.entry
    call = f"{entry.expectation}({', '.join(f'{k}={v!r}' for k, v in entry.kwargs.items())})"
    if outcome.error:
        return f"{call} could not be evaluated: {outcome.error}"
    if outcome.unexpected_count is not None:
        status = "passed" if outcome.passed else "failed"
        text = (
            f"{call} {status}: {outcome.unexpected_count} of {outcome.element_count} rows unexpected "
            f"({(outcome.unexpected_percent or 0):.4g}%)"
        )
        if outcome.sample and not outcome.passed:
            text += f", e.g. {outcome.sample[:SAMPLE_KEYS]}"
        if quarantined:
            text += f"; {quarantined} row(s) quarantined"
        return text
    return f"{call} {'passed' if outcome.passed else 'failed'}: observed {outcome.observed!r}"


def _primary_key_result(ctx: GovernanceContext, measured: CleanMeasurement) -> tuple[dg.AssetCheckResult, dict]:
    key = primary_key_columns(ctx.source)
    frame, missing = measured.frame, measured.missing_key_columns
    if missing:
        duplicated = np.zeros(len(frame), dtype=bool)
        description = f"primary key column(s) missing from the clean table: {', '.join(missing)}"
    else:
        duplicated = measured.duplicated
        description = f"{int(duplicated.sum())} duplicate key(s) on ({', '.join(key)}) among {len(frame)} rows"
    count = int(duplicated.sum())
    passed = count == 0 and not missing
    sample = frame.loc[duplicated, key].head(SAMPLE_KEYS).astype(str).to_dict("records") if count else []
    if sample:
        description += f", e.g. {sample}"
    percent = 100.0 * count / len(frame) if len(frame) else 0.0
    result = dg.AssetCheckResult(
        check_name=PRIMARY_KEY_CHECK,
        asset_key=_key(ctx.source, "clean"),
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "primary_key": dg.MetadataValue.json(key),
            "unexpected_count": count,
            "unexpected_percent": percent,
            "unexpected_sample": dg.MetadataValue.json(sample),
            "observed_value": len(frame) - count,
        },
    )
    row = store.result_row(
        ctx.source.name,
        ctx.partition_key,
        "clean",
        check_name=PRIMARY_KEY_CHECK,
        expectation="primary_key_unique",
        severity="ERROR",
        blocking=True,
        passed=passed,
        observed=len(frame) - count,
        unexpected_count=count,
        unexpected_percent=percent,
        quarantined=0,
        description=description,
    )
    return result, row


# -- governed: certification, reconciliation and the row-loss guard ------------------------------------
def governed_check_specs(source: SourceContract) -> list[dg.AssetCheckSpec]:
    guard = source.spec.governance.min_retained_fraction
    return [
        dg.AssetCheckSpec(
            RECONCILIATION_CHECK,
            asset=_key(source, "governed"),
            blocking=True,
            description="Every landed record is accounted for: landed = governed + quarantined (raw: "
            "unreadable lines and "
            "unparsable values; clean: cleaning rules incl. superseded duplicates, required values, late arrivals; "
            "governed: "
            "failed expectations), and every stage's quarantine file holds exactly the rows the stage removed.",
            metadata={"lepton/action": "block"},
        ),
        dg.AssetCheckSpec(
            ROW_RETENTION_CHECK,
            asset=_key(source, "governed"),
            blocking=True,
            description=f"Row-loss guard: governed keeps at least {guard:.0%} of the landed records "
            "(superseded duplicates "
            "aside; "
            "governance.min_retained_fraction), and never zero rows of a non-empty landing. A failure refuses "
            "certification.",
            metadata={"lepton/action": "block"},
        ),
    ]


def reconciliation_result(ctx: GovernanceContext, ledger: dict, verdict: Reconciliation) -> dg.AssetCheckResult:
    """The reconciliation verdict (``certify.reconcile``) logged, stored and as a check result."""
    return _blocking_governed_result(
        ctx,
        RECONCILIATION_CHECK,
        verdict.passed,
        verdict.description,
        failure_log="reconciliation failed",
        replace=True,  # the governed stage's first result: replaces the partition's earlier governed rows
        stored={
            "observed": verdict.accounted,
            "unexpected_count": verdict.unaccounted,
            "quarantined": verdict.governed_quarantined,
        },
        metadata={
            "landed_records": verdict.landed,
            "raw_rows": verdict.raw_rows,
            "governed_rows": verdict.governed_rows,
            "quarantined_raw": verdict.raw_quarantined,
            "quarantined_clean": verdict.clean_quarantined,
            "quarantined_governed": verdict.governed_quarantined,
            "duplicates_removed": int(ledger["duplicates_removed"]),
            "unaccounted_rows": verdict.unaccounted,
        },
    )


def retention_result(ctx: GovernanceContext, verdict: Retention) -> dg.AssetCheckResult:
    """The row-loss guard's verdict (``certify.retention``) logged, stored and as a check result."""
    return _blocking_governed_result(
        ctx,
        ROW_RETENTION_CHECK,
        verdict.passed,
        verdict.description,
        failure_log="row-loss guard",
        replace=False,
        stored={
            "observed": round(verdict.fraction, 6),
            "unexpected_count": verdict.basis - verdict.governed_rows,
        },
        metadata={
            "retained_fraction": float(verdict.fraction),
            "min_retained_fraction": verdict.minimum,
            "governed_rows": verdict.governed_rows,
            "landed_records": verdict.landed,
        },
    )


def _blocking_governed_result(
    ctx: GovernanceContext,
    check_name: str,
    passed: bool,
    description: str,
    failure_log: str,
    replace: bool,
    stored: dict[str, Any],
    metadata: dict[str, Any],
) -> dg.AssetCheckResult:
    """A blocking ERROR check of the governed stage: a failure logged as an error, the result stored in the
    partition's quality results (``replace``: instead of the stage's earlier rows) and returned for Dagster."""
    spec = ctx.source.spec
    if not passed:
        ctx.log.error(f"{spec.name}/governed {failure_log}: {description}")
    row = store.result_row(
        spec.name,
        ctx.partition_key,
        "governed",
        check_name=check_name,
        expectation=check_name,
        severity="ERROR",
        blocking=True,
        passed=passed,
        description=description,
        **stored,
    )
    store.write_results(ctx.lake, spec.name, ctx.partition_key, "governed", [row], replace=replace)
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=_key(ctx.source, "governed"),
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )
