"""Governance as Dagster asset checks on ``<source>/raw``, ``/clean`` and ``/governed``, plus certification.

The asset factory yields these results from the asset ops themselves. Dagster 1.13 enforces
``blocking=True`` for such in-op results (``execute_step.py``: after the op finishes, any failed ERROR
check with ``blocking`` raises ``DagsterAssetCheckFailedError`` naming the checks, so the step fails and
downstream steps are skipped). Each failing check also carries *why* in its description and the step
log. ``certify`` re-checks the stored verdict, so a governed run launched on its own can never certify a
partition whose clean table failed a blocking check.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from lepton_pipelines.cleaning.support import duplicated_rows, select_rows
from lepton_pipelines.governance import quality_store as store
from lepton_pipelines.governance.drift import compare_schemas
from lepton_pipelines.governance.expectations import CheckPlan, plan_check
from lepton_pipelines.governance.quality_store import frame_fingerprint
from lepton_pipelines.governance.resource import GreatExpectationsResource
from lepton_pipelines.governance.validation import ExpectationOutcome, SuiteOutcome
from lepton_pipelines.lake.quarantine import write_quarantine
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.sources.registry import Source

SCHEMA_DRIFT_CHECK = "schema_drift"
PRIMARY_KEY_CHECK = "primary_key_unique"
RECONCILIATION_CHECK = "reconciliation"
REASON_COLUMN = "_reason"
FAILED_CHECKS_COLUMN = "_failed_checks"
FAILED_FLAG_PREFIX = "failed__"
SAMPLE_KEYS = 5


@dataclass
class GovernanceContext:
    """What a governance step needs from the asset run that calls it."""

    source: Source
    lake: Lake
    partition_key: str | None
    gx: GreatExpectationsResource
    log: logging.Logger | Any


@dataclass
class CertifyResult:
    frame: pd.DataFrame  # the governed table: declared columns only
    quarantined_rows: int
    metadata: dict[str, Any]
    check_results: list[dg.AssetCheckResult] = field(default_factory=list)


def _key(source: Source, zone: str) -> dg.AssetKey:
    return dg.AssetKey([source.name, zone])


def check_plans(source: Source) -> list[CheckPlan]:
    return [plan_check(entry, source.spec.governance) for entry in source.spec.expectations]


# -- raw: schema drift -----------------------------------------------------------------------------
def raw_check_specs(source: Source) -> list[dg.AssetCheckSpec]:
    policy = source.spec.governance.schema_drift
    return [
        dg.AssetCheckSpec(
            SCHEMA_DRIFT_CHECK,
            asset=_key(source, "raw"),
            blocking=policy == "error",
            description=f"Landed columns and types match the declared schema (added, removed, retyped columns); on drift: {policy.upper()}.",
        )
    ]


def landed_column_schema(landed_schema: dict[str, str]) -> dg.TableSchema:
    """The landed schema as Dagster column schema; put it on the raw materialization under
    ``dagster/column_schema`` so Dagster's column-schema-change checks can diff partitions."""
    return dg.TableSchema(columns=[dg.TableColumn(name, str(kind)) for name, kind in landed_schema.items()])


def evaluate_raw(ctx: GovernanceContext, raw: pd.DataFrame, landed_schema: dict[str, str], coercion: dict) -> list[dg.AssetCheckResult]:
    spec = ctx.source.spec
    declared = {c.name: c.type for c in spec.columns}
    drift = compare_schemas(declared, landed_schema, coercion.get("missing_columns", []), coercion.get("extra_columns", []))
    error = spec.governance.schema_drift == "error"
    severity = dg.AssetCheckSeverity.ERROR if error else dg.AssetCheckSeverity.WARN
    description = f"{spec.name}: {drift.describe()}"
    if drift.drifted:
        ctx.log.log(logging.ERROR if error else logging.WARNING, f"{spec.name}/raw schema drift: {drift.describe()} (policy: {spec.governance.schema_drift})")
    result = dg.AssetCheckResult(
        check_name=SCHEMA_DRIFT_CHECK,
        asset_key=_key(ctx.source, "raw"),
        passed=not drift.drifted,
        severity=severity,
        description=description,
        metadata={
            "added_columns": dg.MetadataValue.json(drift.added),
            "removed_columns": dg.MetadataValue.json(drift.removed),
            "retyped_columns": dg.MetadataValue.json(drift.retyped),
            "parse_failures": dg.MetadataValue.json(coercion.get("parse_failures", {})),
            "landed_schema": dg.MetadataValue.table_schema(landed_column_schema(landed_schema)),
            "declared_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in declared.items()])),
            "rows": len(raw),
        },
    )
    store.write_results(ctx.lake, spec.name, ctx.partition_key, "raw", [
        store.result_row(spec.name, ctx.partition_key, "raw", check_name=SCHEMA_DRIFT_CHECK, expectation="schema_drift",
                         severity=severity.value, blocking=error, passed=not drift.drifted,
                         observed={"added": drift.added, "removed": drift.removed, "retyped": drift.retyped},
                         description=description)
    ])
    return [result]


# -- clean: expectations and primary key --------------------------------------------------------------
def clean_check_specs(source: Source) -> list[dg.AssetCheckSpec]:
    specs = []
    for plan in check_plans(source):
        entry = plan.entry
        action = "quarantines failing rows" if plan.quarantines else ("blocks governed" if plan.blocking else "warns")
        text = entry.description or f"{entry.expectation} {entry.kwargs}"
        specs.append(
            dg.AssetCheckSpec(
                plan.check_name,
                asset=_key(source, "clean"),
                blocking=plan.blocking,
                description=f"{text} ({plan.scope}-level, {entry.severity}: {action})",
                metadata={"gx_expectation": entry.expectation, "gx_kwargs": dg.MetadataValue.json(entry.kwargs)},
            )
        )
    key = ", ".join(primary_key_columns(source))
    specs.append(dg.AssetCheckSpec(PRIMARY_KEY_CHECK, asset=_key(source, "clean"), blocking=True,
                                   description=f"No two rows share the primary key ({key})."))
    return specs


def primary_key_columns(source: Source) -> list[str]:
    """The declared key; without one, whole rows (declared columns) must be distinct."""
    return list(source.spec.primary_key) or [c.name for c in source.spec.columns]


def evaluate_clean(ctx: GovernanceContext, clean: pd.DataFrame, cleaning: dict, clean_file: str | None = None) -> list[dg.AssetCheckResult]:
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
        if outcome.plan.quarantines and not outcome.passed:
            failures[outcome.check_name] = outcome.failing_rows.tolist()
        if outcome.plan.blocking and not outcome.passed:
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
    store.write_row_failures(ctx.lake, spec.name, ctx.partition_key, _frame_key(measured.frame, declared, clean_file), failures)
    return _CleanVerdict(results, failures, blocking)


def _expectation_result(ctx: GovernanceContext, outcome: ExpectationOutcome) -> tuple[dg.AssetCheckResult, dict]:
    plan = outcome.plan
    quarantined = len(outcome.failing_rows) if plan.quarantines and not outcome.passed else 0
    severity = dg.AssetCheckSeverity.ERROR if plan.blocking else dg.AssetCheckSeverity.WARN
    description = _describe_outcome(outcome, quarantined)
    metadata: dict[str, Any] = {
        "gx_expectation": dg.MetadataValue.json(outcome.config),
        "scope": plan.scope,
        "declared_severity": plan.entry.severity,
        "unexpected_sample": dg.MetadataValue.json(outcome.sample),
    }
    for name, value in (("observed_value", outcome.observed), ("unexpected_count", outcome.unexpected_count),
                        ("unexpected_percent", outcome.unexpected_percent), ("element_count", outcome.element_count),
                        ("gx_error", outcome.error)):
        if value is not None:
            metadata[name] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
    if plan.quarantines:
        metadata["quarantined_rows"] = quarantined
    result = dg.AssetCheckResult(check_name=plan.check_name, asset_key=_key(ctx.source, "clean"), passed=outcome.passed,
                                 severity=severity, description=description, metadata=metadata)
    row = store.result_row(ctx.source.name, ctx.partition_key, "clean", check_name=plan.check_name,
                           expectation=plan.entry.expectation, severity=severity.value, blocking=plan.blocking,
                           passed=outcome.passed, observed=outcome.observed, unexpected_count=outcome.unexpected_count,
                           unexpected_percent=outcome.unexpected_percent, quarantined=quarantined, description=description)
    return result, row


def _describe_outcome(outcome: ExpectationOutcome, quarantined: int) -> str:
    entry = outcome.plan.entry
    call = f"{entry.expectation}({', '.join(f'{k}={v!r}' for k, v in entry.kwargs.items())})"
    if outcome.error:
        return f"{call} could not be evaluated: {outcome.error}"
    if outcome.unexpected_count is not None:
        status = "passed" if outcome.passed else "failed"
        text = f"{call} {status}: {outcome.unexpected_count} of {outcome.element_count} rows unexpected ({(outcome.unexpected_percent or 0):.4g}%)"
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
        check_name=PRIMARY_KEY_CHECK, asset_key=_key(ctx.source, "clean"), passed=passed, severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"primary_key": dg.MetadataValue.json(key), "unexpected_count": count, "unexpected_percent": percent,
                  "unexpected_sample": dg.MetadataValue.json(sample), "observed_value": len(frame) - count},
    )
    row = store.result_row(ctx.source.name, ctx.partition_key, "clean", check_name=PRIMARY_KEY_CHECK, expectation="primary_key_unique",
                           severity="ERROR", blocking=True, passed=passed, observed=len(frame) - count,
                           unexpected_count=count, unexpected_percent=percent, quarantined=0, description=description)
    return result, row


# -- governed: certification and reconciliation -----------------------------------------------------
def governed_check_specs(source: Source) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            RECONCILIATION_CHECK,
            asset=_key(source, "governed"),
            blocking=True,
            description="Every raw row is accounted for: raw = governed + duplicates + dropped + quarantined.",
        )
    ]


def certify(ctx: GovernanceContext, clean: pd.DataFrame, cleaning: dict, clean_file: str | None = None) -> CertifyResult:
    """Remove rows failing quarantining expectations into ``quarantine/<source>/.../governed.parquet``
    and return the governed table. Raises ``dagster.Failure`` when the clean table failed a blocking
    check, so an uncertified partition never reaches governed, even when governed runs on its own.

    ``clean_file``: ``lake.store.file_identity`` of the file ``clean`` was read from (checked unchanged
    across the read). Stored row failures apply only when filed under that exact file version (or, when
    not given, under this frame's content fingerprint); otherwise the frame is validated again."""
    spec = ctx.source.spec
    declared = [c.name for c in spec.columns]
    frame = clean.reset_index(drop=True)
    failures, blocking = _stored_verdict(ctx, frame, clean_file)
    verdict_source = "recorded by the clean step for this clean table"
    if failures is None:  # clean changed since it was validated (or was never validated): validate now
        verdict_source = "validated again at certification (no validation on record for this clean table)"
        ctx.log.info(f"{spec.name}: no validation on record for this clean table; validating before certifying")
        verdict = record_clean(ctx, measure_clean(ctx, frame), clean_file)
        failures, blocking = verdict.failures, verdict.blocking_failures
    if blocking:
        raise dg.Failure(
            description=f"{spec.name}: not certified, {len(blocking)} blocking check(s) failed on {spec.name}/clean:\n"
            + "\n".join(f"  - {b}" for b in blocking),
            metadata={"failed_checks": dg.MetadataValue.json(blocking)},
        )
    positions = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in failures.values()])) if failures else np.empty(0, dtype=np.int64)
    keep = np.ones(len(frame), dtype=bool)
    keep[positions] = False
    quarantine = _quarantine_rows(frame, positions, failures)
    written = write_quarantine(ctx.lake, spec.name, ctx.partition_key, "governed", quarantine)
    governed = select_rows(frame, keep, [c for c in [*declared, "_replaced"] if c in frame.columns]).reset_index(drop=True)
    reconciliation = _reconciliation_result(ctx, cleaning, clean_rows=len(frame), governed_rows=len(governed), quarantined=len(positions))
    metadata = {
        "governed_rows": len(governed),
        "quarantined_by_check": dg.MetadataValue.json({k: len(v) for k, v in failures.items()}),
        "dagster/row_count": len(governed),
        "certified_with": verdict_source,
    }
    if written is not None:
        metadata["quarantine_path"] = dg.MetadataValue.path(written.path)
    if len(positions):
        ctx.log.warning(f"{spec.name}: {len(positions)} row(s) quarantined by {', '.join(sorted(failures))}")
    return CertifyResult(frame=governed, quarantined_rows=int(len(positions)), metadata=metadata, check_results=[reconciliation])


def _frame_key(frame: pd.DataFrame, declared: list[str], clean_file: str | None) -> str:
    """What stored row failures are filed under: the clean partition file's identity when the frame is
    exactly that file's content (free to obtain), else a hash of the frame's values (~0.15 s/M rows).
    The two kinds never equal each other, so a key of one kind never matches a frame of the other."""
    return f"file:{clean_file}" if clean_file else frame_fingerprint(frame, declared)


def _stored_verdict(ctx: GovernanceContext, frame: pd.DataFrame, clean_file: str | None) -> tuple[dict[str, list[int]] | None, list[str]]:
    spec = ctx.source.spec
    key = _frame_key(frame, [c.name for c in spec.columns], clean_file)
    failures = store.read_row_failures(ctx.lake, spec.name, ctx.partition_key, key)
    if failures is None:
        return None, []
    results = store.read_results(ctx.lake, spec.name, ctx.partition_key)
    if results is None:
        return None, []
    failed = results[(results["stage"] == "clean") & results["blocking"] & ~results["passed"]]
    return failures, [f"{r.check_name}: {r.description}" for r in failed.itertuples()]


def _quarantine_rows(frame: pd.DataFrame, positions: np.ndarray, failures: dict[str, list[int]]) -> pd.DataFrame:
    """The failing rows with one boolean column per failed check and a human-readable reason."""
    rows = frame.iloc[positions].copy()
    names = sorted(failures)
    for name in names:
        rows[f"{FAILED_FLAG_PREFIX}{name}"] = np.isin(positions, np.asarray(failures[name], dtype=np.int64))
    flags = rows[[f"{FAILED_FLAG_PREFIX}{n}" for n in names]].to_numpy() if names else np.zeros((len(rows), 0), dtype=bool)
    failed = [", ".join(n for n, f in zip(names, row) if f) for row in flags]
    rows[FAILED_CHECKS_COLUMN] = failed
    rows[REASON_COLUMN] = [f"failed expectation(s): {f}" for f in failed]
    return rows.reset_index(drop=True)


def _reconciliation_result(ctx: GovernanceContext, cleaning: dict, clean_rows: int, governed_rows: int, quarantined: int) -> dg.AssetCheckResult:
    spec = ctx.source.spec
    raw = int(cleaning.get("raw_rows", cleaning.get("input_rows", 0)))
    duplicates = int(cleaning.get("duplicates_removed", 0))
    dropped = int(cleaning.get("rows_dropped", 0))
    accounted = governed_rows + duplicates + dropped + quarantined
    expected_clean = cleaning.get("output_rows")
    passed = raw == accounted and (expected_clean is None or int(expected_clean) == clean_rows)
    description = (f"raw {raw} = governed {governed_rows} + duplicates {duplicates} + dropped {dropped} + quarantined {quarantined}"
                   f" ({accounted})" + ("" if passed else f" — {raw - accounted} row(s) unaccounted for"))
    if expected_clean is not None and int(expected_clean) != clean_rows:
        description += f"; cleaning reported {expected_clean} clean rows but governed received {clean_rows}"
    if not passed:
        ctx.log.error(f"{spec.name}/governed reconciliation failed: {description}")
    store.write_results(ctx.lake, spec.name, ctx.partition_key, "governed", [
        store.result_row(spec.name, ctx.partition_key, "governed", check_name=RECONCILIATION_CHECK, expectation="reconciliation",
                         severity="ERROR", blocking=True, passed=passed, observed=accounted,
                         unexpected_count=raw - accounted, quarantined=quarantined, description=description)
    ])
    return dg.AssetCheckResult(
        check_name=RECONCILIATION_CHECK, asset_key=_key(ctx.source, "governed"), passed=passed, severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"raw_rows": raw, "governed_rows": governed_rows, "duplicates_removed": duplicates, "rows_dropped": dropped,
                  "quarantined_rows": quarantined, "unaccounted_rows": raw - accounted,
                  "connector_rejects": int(cleaning.get("rejects", 0)), "cleaning_balanced": bool(cleaning.get("balanced", True))},
    )
