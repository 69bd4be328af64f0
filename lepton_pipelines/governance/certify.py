"""Certification of a clean partition into ``<source>/governed``: which rows are quarantined, whether the
partition is refused or certified, and the ledger that accounts for every landed record.

The decisions are plain functions (``clean_ledger``, ``quarantine_positions``, ``reconcile``,
``retention``); ``checks.py`` turns their verdicts into Dagster check results. ``certify`` re-checks the
stored verdict, so a governed run launched on its own can never certify a partition whose clean table
failed a blocking check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from lepton_pipelines.cleaning.support import select_rows
from lepton_pipelines.governance import quality_store as store
from lepton_pipelines.governance.checks import (
    NEWEST_EVENT_TIME_KEY,
    GovernanceContext,
    measure_clean,
    reconciliation_result,
    record_clean,
    retention_result,
)
from lepton_pipelines.lake.quarantine import quarantine_frame, quarantined_rows, write_quarantine


@dataclass
class CertifyResult:
    frame: pd.DataFrame  # the governed table: declared columns only
    quarantined_rows: int
    metadata: dict[str, Any]
    check_results: list[dg.AssetCheckResult] = field(default_factory=list)
    refused: str | None = None  # why certification is refused after the checks ran (row-loss guard, reconciliation)


# Columns the governed table keeps besides the declared ones: per row, what is not as it landed — values a
# cleaning rule changed (``_replaced``) and values kept as null because they did not parse under
# ``on_parse_error: null`` (``_parse_errors``, their landed text). A certified null is never a silent guess.
GOVERNED_LINEAGE_COLUMNS = ("_replaced", "_parse_errors")


def certify(ctx: GovernanceContext, clean: pd.DataFrame, ledger: dict, clean_file: str | None = None) -> CertifyResult:
    """Remove rows failing quarantining expectations into ``quarantine/<source>/.../governed.parquet``
    and return the governed table. Raises ``dagster.Failure`` when the clean table failed a blocking
    check, so an uncertified partition never reaches governed, even when governed runs on its own; sets
    ``refused`` when the row-loss guard or the reconciliation fails (the caller records the failed checks,
    then fails the step without publishing).

    ``ledger``: the clean step's row counts (``clean_ledger``). ``clean_file``: ``lake.store.file_identity``
    of the file ``clean`` was read from (checked unchanged across the read). Stored row failures apply only
    when filed under that exact file version (or, when not given, under this frame's content fingerprint);
    otherwise the frame is validated again."""
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
            allow_retries=False,
        )
    positions = quarantine_positions(failures)
    keep = np.ones(len(frame), dtype=bool)
    keep[positions] = False
    quarantine = _quarantine_rows(frame, positions, failures, declared)
    written = write_quarantine(ctx.lake, spec.name, ctx.partition_key, "governed", quarantine)
    kept_columns = [c for c in (*declared, *GOVERNED_LINEAGE_COLUMNS) if c in frame.columns]
    governed = select_rows(frame, keep, kept_columns).reset_index(drop=True)
    quarantined_files = {
        stage: quarantined_rows(ctx.lake, spec.name, ctx.partition_key, stage) for stage in ("raw", "clean", "governed")
    }
    reconciliation = reconciliation_result(
        ctx,
        ledger,
        reconcile(
            ledger,
            clean_rows=len(frame),
            governed_rows=len(governed),
            governed_quarantined=len(positions),
            quarantined_files=quarantined_files,
        ),
    )
    retained = retention_result(
        ctx, retention(ledger, governed_rows=len(governed), minimum=spec.governance.min_retained_fraction)
    )
    metadata = {
        "governed_rows": len(governed),
        "quarantined_by_check": dg.MetadataValue.json({k: len(v) for k, v in failures.items()}),
        "dagster/row_count": len(governed),
        "certified_with": verdict_source,
    }
    if spec.event_time and spec.event_time in governed.columns and len(governed):
        newest = governed[spec.event_time].max()
        if pd.notna(newest):  # freshness is judged on data age, not on when the run happened
            metadata[NEWEST_EVENT_TIME_KEY] = str(pd.Timestamp(newest).isoformat())
    if written is not None:
        metadata["quarantine_path"] = dg.MetadataValue.path(written.path)
    if len(positions):
        ctx.log.warning(f"{spec.name}: {len(positions)} row(s) quarantined by {', '.join(sorted(failures))}")
    refused = [r.description for r in (reconciliation, retained) if not r.passed]
    return CertifyResult(
        frame=governed,
        quarantined_rows=int(len(positions)),
        metadata=metadata,
        check_results=[reconciliation, retained],
        refused=f"{spec.name}: not certified — " + "; ".join(refused) if refused else None,
    )


def _stored_verdict(
    ctx: GovernanceContext, frame: pd.DataFrame, clean_file: str | None
) -> tuple[dict[str, list[int]] | None, list[str]]:
    spec = ctx.source.spec
    key = store.row_failures_key(frame, [c.name for c in spec.columns], clean_file)
    failures = store.read_row_failures(ctx.lake, spec.name, ctx.partition_key, key)
    if failures is None:
        return None, []
    results = store.read_results(ctx.lake, spec.name, ctx.partition_key)
    if results is None:
        return None, []
    failed = results[(results["stage"] == "clean") & results["blocking"] & ~results["passed"]]
    return failures, [f"{r.check_name}: {r.description}" for r in failed.itertuples()]


def quarantine_positions(failures: dict[str, list[int]]) -> np.ndarray:
    """Row positions failing any quarantining check, sorted and distinct."""
    if not failures:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in failures.values()]))


def _quarantine_rows(
    frame: pd.DataFrame, positions: np.ndarray, failures: dict[str, list[int]], declared: list[str]
) -> pd.DataFrame:
    """The failing rows in the quarantine schema, ``_check`` naming every check each row failed."""
    rows = frame.iloc[positions]
    names = sorted(failures)
    flags = (
        np.column_stack([np.isin(positions, np.asarray(failures[n], dtype=np.int64)) for n in names])
        if names
        else np.zeros((len(rows), 0), dtype=bool)
    )
    failed = [", ".join(n for n, f in zip(names, row, strict=True) if f) for row in flags]
    return quarantine_frame(
        "governed", rows, declared, reason=[f"failed expectation(s): {f}" for f in failed], check=failed
    )


def clean_ledger(raw_rows: int, raw_quarantined: int, cleaning: dict, required_removed: int, late_removed: int) -> dict:
    """The clean step's row counts, stored beside the partition for certification to reconcile."""
    clean_quarantined = (
        int(cleaning["duplicates_removed"]) + int(cleaning["rows_dropped"]) + required_removed + late_removed
    )
    return {
        "landed": raw_rows + raw_quarantined,
        "raw_quarantined": raw_quarantined,
        "raw_rows": raw_rows,
        "duplicates_removed": int(cleaning["duplicates_removed"]),
        "rows_dropped": int(cleaning["rows_dropped"]),
        "required_removed": required_removed,
        "late_removed": late_removed,
        "clean_quarantined": clean_quarantined,
        "clean_rows": int(cleaning["output_rows"]) - required_removed - late_removed,
        "cleaning_balanced": bool(cleaning.get("balanced", True)),
    }


@dataclass(frozen=True)
class Reconciliation:
    """Every landed record is governed or in a quarantine zone, and each stage's counts agree."""

    passed: bool
    description: str
    landed: int
    accounted: int
    raw_rows: int
    raw_quarantined: int
    clean_quarantined: int
    governed_rows: int
    governed_quarantined: int

    @property
    def unaccounted(self) -> int:
        return self.landed - self.accounted


def reconcile(
    ledger: dict, clean_rows: int, governed_rows: int, governed_quarantined: int, quarantined_files: dict[str, int]
) -> Reconciliation:
    landed, raw_rows = int(ledger["landed"]), int(ledger["raw_rows"])
    raw_q, clean_q = int(ledger["raw_quarantined"]), int(ledger["clean_quarantined"])
    accounted = governed_rows + raw_q + clean_q + governed_quarantined
    problems = []
    if landed != accounted:
        problems.append(f"{landed - accounted} landed record(s) unaccounted for")
    if raw_rows != int(ledger["clean_rows"]) + clean_q:
        problems.append(f"raw {raw_rows} != clean {ledger['clean_rows']} + clean quarantine {clean_q}")
    if int(ledger["clean_rows"]) != clean_rows:
        problems.append(f"the clean step reported {ledger['clean_rows']} clean rows but governed read {clean_rows}")
    for stage, expected in (("raw", raw_q), ("clean", clean_q), ("governed", governed_quarantined)):
        if quarantined_files[stage] != expected:
            problems.append(f"quarantine/{stage} holds {quarantined_files[stage]} row(s), the stage removed {expected}")
    if not ledger.get("cleaning_balanced", True):
        problems.append("the cleaning rules did not balance")
    passed = not problems
    description = (
        f"landed {landed} = governed {governed_rows} + quarantined {raw_q + clean_q + governed_quarantined} "
        f"(raw {raw_q}; clean {clean_q} incl. {ledger['duplicates_removed']} superseded duplicate(s); governed "
        f"{governed_quarantined})" + ("" if passed else " — " + "; ".join(problems))
    )
    return Reconciliation(
        passed, description, landed, accounted, raw_rows, raw_q, clean_q, governed_rows, governed_quarantined
    )


@dataclass(frozen=True)
class Retention:
    """The row-loss guard: governed keeps at least ``min_retained_fraction`` of what landed."""

    passed: bool
    description: str
    fraction: float
    basis: int
    landed: int
    governed_rows: int
    minimum: float


def retention(ledger: dict, governed_rows: int, minimum: float) -> Retention:
    landed = int(ledger["landed"])
    basis = landed - int(ledger["duplicates_removed"])  # re-sent versions of a kept record are not a loss
    fraction = governed_rows / basis if basis else 1.0
    if basis and governed_rows == 0:
        passed, why = False, f"{landed} landed record(s) and none governed"
    elif fraction < minimum:
        passed, why = (
            False,
            f"governed keeps {governed_rows} of {basis} landed record(s) ({fraction:.1%}), below "
            f"min_retained_fraction {minimum:.0%}",
        )
    else:
        passed, why = (
            True,
            f"governed keeps {governed_rows} of {basis} landed record(s) ({fraction:.1%}; minimum {minimum:.0%})",
        )
    if not passed:
        why += " — see quarantine/ for the reasons"
    return Retention(passed, why, fraction, basis, landed, governed_rows, minimum)
