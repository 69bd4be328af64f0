"""Turn a declared source into software-defined assets ``<source>/raw → clean → governed``.

The Dagster wiring only: fetching is the connector's job, typing and cleaning are pure functions in
``cleaning``, certification and checks live in ``governance``. Each asset hands its table to the lake
IO manager (atomic Parquet per partition) and writes what it removed to the quarantine zone, so every
row of raw is accounted for: raw = governed + duplicates + dropped + quarantined.

Backfills: each asset carries a multi-run ``BackfillPolicy``, so a backfill of N partitions is
ceil(N / max_partitions_per_run) runs, not N. Each asset body is written for ONE partition (it takes the
partition key); ``_for_each_partition`` runs it once per partition of the step's range, publishing each
partition to its own ``date=`` folder as soon as it is computed (with its own quarantine, quality
records, reconciliation and check results), so a range run leaves exactly what separate runs would.
What a partition costs beyond its rows is paid once per range where the result does not depend on the
partition: one GX data source, one query for the materializations the checks point at, one summary of
the partitions' warnings in the step log, each quality-results file written once per stage.
"""

import functools
import inspect
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from lepton_pipelines.cleaning import coerce_to_schema, run_cleaning
from lepton_pipelines.cleaning.support import select_rows
from lepton_pipelines.connectors import FetchRequest, FetchResult
from lepton_pipelines.governance import (
    GovernanceContext,
    GreatExpectationsResource,
    certify,
    clean_check_specs,
    contract,
    evaluate_raw,
    governed_check_specs,
    landed_column_schema,
    measure_clean,
    raw_check_specs,
    record_clean,
)
from lepton_pipelines.governance.certify import clean_ledger
from lepton_pipelines.governance.checks import RawFindings, contract_results
from lepton_pipelines.governance.quality_store import (
    CLEANING_FILE,
    deferred_results,
    quality_dir,
    read_json,
    write_json,
)
from lepton_pipelines.lake.io_manager import PublishedPartitions, publish_table, release_freed_memory, table_schema
from lepton_pipelines.lake.quarantine import quarantined_rows, write_quarantine
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import FILE_IDENTITY_ATTR, Lake, read_parquet_dir
from lepton_pipelines.platform.retries import TRANSIENT_RETRY_POLICY, is_transient_error, permanent_failure
from lepton_pipelines.sources.registry import Source

LAKE_IO_KEY = "lake_io"
# How many partitions one backfill run covers. A run has a fixed cost (process start, definitions load,
# GX import: ~4 s of CPU) and runs in parallel with the others up to the run queue's max_concurrent_runs (4
# in dagster.yaml). A quarter of daily partitions per run makes a year four runs: the fixed cost is paid 4
# times instead of 12 (a month per run), every core is busy, and a failure re-runs at most a quarter.
# "all" makes it single-run, which `dagster asset materialize --partition-range` requires.
BACKFILL_MAX_PARTITIONS_ENV = "LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN"
DEFAULT_BACKFILL_MAX_PARTITIONS = 92
SINGLE_RUN_VALUE = "all"


@contextmanager
def _only_transient_retries() -> Iterator[None]:
    """The assets carry TRANSIENT_RETRY_POLICY for S3/HTTP hiccups; anything else (bad input, a missing
    landing file, a bug) fails at once instead of being retried with backoff and alerting late."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:
        if is_transient_error(error):
            raise
        raise permanent_failure(error) from error


def asset_key(source: str, zone: str) -> dg.AssetKey:
    return dg.AssetKey([source, zone])


def partitions_for(source: Source) -> dg.DailyPartitionsDefinition | None:
    if not source.spec.is_partitioned:
        return None
    # Batch exports of a day arrive after it ends, so the newest partition is yesterday; streaming
    # sources (MQTT) land continuously, so today's partition is open for them.
    streaming = source.connector.type == "mqtt"
    return dg.DailyPartitionsDefinition(
        start_date=source.spec.start_date, timezone="UTC", end_offset=1 if streaming else 0
    )


def build_source_assets(source: Source) -> list[dg.AssetsDefinition]:
    # Two deliberate uses of newer Dagster APIs (backfill_policy: beta; partitioned check specs: preview),
    # pinned by dagster==1.13.27 and covered by tests: not worth a warning per asset at every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [_raw_asset(source), _clean_asset(source), _governed_asset(source)]


def backfill_policy_for(source: Source) -> dg.BackfillPolicy | None:
    """Multi-run: ``$LEPTON_BACKFILL_MAX_PARTITIONS_PER_RUN`` partitions per run (default 92); ``all``:
    single-run (the whole range in one run)."""
    if not source.spec.is_partitioned:
        return None
    raw = os.environ.get(BACKFILL_MAX_PARTITIONS_ENV, "").strip()
    if raw.lower() == SINGLE_RUN_VALUE:
        return dg.BackfillPolicy.single_run()
    try:
        per_run = int(raw) if raw else DEFAULT_BACKFILL_MAX_PARTITIONS
    except ValueError:
        per_run = 0
    if per_run < 1:
        raise ValueError(
            f"{BACKFILL_MAX_PARTITIONS_ENV}={raw!r}: expected a whole number of partitions per backfill run "
            f"(>= 1), or {SINGLE_RUN_VALUE!r} for one run per backfill"
        )
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=per_run)


def _partitioned_checks(source: Source, specs: list[dg.AssetCheckSpec]) -> list[dg.AssetCheckSpec]:
    """Checks share the asset's partitions, so each result is recorded for its partition (the UI shows
    check status per partition) — also when one step evaluates a whole range."""
    partitions_def = partitions_for(source)
    if partitions_def is None:
        return specs
    return [
        dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=spec.description,
            blocking=spec.blocking,
            metadata=spec.metadata,
            additional_deps=spec.additional_deps,
            automation_condition=spec.automation_condition,
            partitions_def=partitions_def,
        )
        for spec in specs
    ]


def _owners(source: Source) -> list[str]:
    owner = source.spec.owner.strip()
    return [owner if "@" in owner or owner.startswith("team:") else f"team:{owner}"]


def _common(source: Source, zone: str, description: str) -> dict[str, Any]:
    spec = source.spec
    return dict(
        key=asset_key(spec.name, zone),
        group_name=spec.name,
        partitions_def=partitions_for(source),
        io_manager_key=LAKE_IO_KEY,
        description=f"{spec.description}\n\n{description}",
        owners=_owners(source),
        tags={**spec.tags, "lepton/zone": zone},
        kinds={"parquet", "pandas"},
        metadata={"lepton/source_file": spec.origin, "lepton/connector": source.connector.type},
        retry_policy=TRANSIENT_RETRY_POLICY,
        backfill_policy=backfill_policy_for(source),
    )


def _governance_context(
    log: Any, source: Source, lake: Lake, gx: GreatExpectationsResource, partition: str | None
) -> GovernanceContext:
    return GovernanceContext(source=source, lake=lake, partition_key=partition, gx=gx, log=log)


# (context, lake, gx, partition, log): the log is the step's, or a range step's ``_RangeLog``.
PartitionBody = Callable[
    [dg.AssetExecutionContext, LakeResource, GreatExpectationsResource, "str | None", Any], Iterator[Any]
]
RANGE_LOG_LINES = 50  # messages of a range step's partitions quoted in its summary (the count covers all)


class _RangeLog:
    """The log a partition's body writes to in a range step.

    Every message is an event in the run's storage, written one by one: the few warnings each partition
    logs (quarantined examples, counts) would be thousands of event writes over a year of partitions. So
    ERROR messages go out at once, prefixed with their partition; lower levels are counted and summarised
    once per step, quoting the first ``RANGE_LOG_LINES`` — what they report is also in each partition's
    check results and quarantine files, which hold every row.
    """

    def __init__(self, log: Any, what: str):
        self._log, self._what = log, what
        self.partition: str | None = None
        self._counts: Counter[int] = Counter()
        self._partitions: dict[int, set[str]] = {}
        self._lines: dict[int, list[str]] = {}

    def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        text = f"[{self.partition}] {message % args if args else message}"
        if level >= logging.ERROR:
            self._log.log(level, text, **kwargs)
            return
        self._counts[level] += 1
        self._partitions.setdefault(level, set()).add(str(self.partition))
        lines = self._lines.setdefault(level, [])
        if len(lines) < RANGE_LOG_LINES:
            lines.append(text)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, message, *args, **kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, message, *args, **kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, message, *args, **kwargs)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, message, *args, **kwargs)

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, message, *args, **kwargs)

    def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, message, *args, **kwargs)

    def summarize(self, partitions: int) -> None:
        for level in sorted(self._counts):
            count, lines = self._counts[level], self._lines[level]
            more = f"\n… and {count - len(lines)} more" if count > len(lines) else ""
            self._log.log(
                level,
                f"{self._what}: {count} {logging.getLevelName(level).lower()} message(s) from "
                f"{len(self._partitions[level])} of {partitions} partition(s) in this run:\n" + "\n".join(lines) + more,
            )


def _for_each_partition(source: Source, zone: str) -> Callable[[PartitionBody], Callable[..., Iterator[Any]]]:
    """Turn a one-partition asset body into the asset's compute function.

    One partition (or an unpartitioned source): the body's events pass through unchanged — its Output
    goes to the lake IO manager, its check results to Dagster. A partition range (a backfill run): the
    body runs once per partition; each Output is published at once to that partition's folder
    (``publish_table``, the IO manager's own write) with its metadata scoped to that partition, and the
    check results are recorded per partition after the range's materializations exist (see
    ``_range_check_evaluations``). A failure in any partition fails the step, naming the partition;
    partitions published before it stay valid, each a complete atomic write that a re-run replaces.
    """

    def decorate(body: PartitionBody) -> Callable[..., Iterator[Any]]:
        @functools.wraps(body)
        def compute(
            context: dg.AssetExecutionContext, lake: LakeResource, gx: GreatExpectationsResource
        ) -> Iterator[Any]:
            if not source.spec.is_partitioned or context.has_partition_key:
                with deferred_results():
                    yield from body(
                        context, lake, gx, context.partition_key if context.has_partition_key else None, context.log
                    )
                return
            log = _RangeLog(context.log, f"{source.name}/{zone}")
            with gx.reusing_data_source():
                yield from _run_partition_range(
                    context, source, zone, lake, log, lambda partition: body(context, lake, gx, partition, log)
                )

        # Dagster reads the compute function's parameters to bind context and resources.
        signature = inspect.signature(body)
        compute.__signature__ = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name not in ("partition", "log")]
        )
        del compute.__wrapped__
        return compute

    return decorate


def _run_partition_range(
    context: dg.AssetExecutionContext,
    source: Source,
    zone: str,
    lake: LakeResource,
    log: _RangeLog,
    run_one: Callable[[str], Iterator[Any]],
) -> Iterator[Any]:
    store = lake.get()
    partitions = list(context.partition_keys)
    checks: list[tuple[str, dg.AssetCheckResult]] = []
    published: list[str] = []
    for number, partition in enumerate(partitions, start=1):
        log.partition = partition
        try:
            with deferred_results():
                for event in run_one(partition):
                    if isinstance(event, dg.Output):
                        directory = store.table_dir(zone, source.name, partition)
                        context.add_asset_metadata(
                            {**event.metadata, **publish_table(directory, event.value)}, partition_key=partition
                        )
                        published.append(partition)
                    elif isinstance(event, dg.AssetCheckResult):
                        checks.append((partition, event))
                    else:
                        yield event
        except dg.Failure as failure:
            log.summarize(len(partitions))
            # the failed checks that explain the refusal (row-loss guard, reconciliation) are recorded too
            yield from _range_check_evaluations(context, asset_key(source.name, zone), checks)
            raise dg.Failure(
                description=f"{source.name}/{zone} partition {partition} ({number} of {len(partitions)} in this run): "
                f"{failure.description}",
                metadata=failure.metadata,
                allow_retries=failure.allow_retries,
            ) from failure
        except Exception:
            log.summarize(len(partitions))
            # Re-raised as is: the retry policy and its transient/permanent verdict see the original error.
            context.log.error(
                f"{source.name}/{zone} partition {partition} ({number} of {len(partitions)} in this run) failed"
            )
            raise
    log.summarize(len(partitions))
    yield dg.Output(PublishedPartitions(tuple(published)))
    yield from _range_check_evaluations(context, asset_key(source.name, zone), checks)


def _range_check_evaluations(
    context: dg.AssetExecutionContext, key: dg.AssetKey, checks: list[tuple[str, dg.AssetCheckResult]]
) -> Iterator[Any]:
    """Record each check result for its own partition.

    Dagster 1.13 turns a yielded ``AssetCheckResult`` into an evaluation for ``context.partition_key``
    only (``AssetCheckResult.to_asset_check_evaluation``); a range step has no single partition key, so
    it would record every result without a partition. Here each result becomes the
    ``AssetCheckEvaluation`` Dagster would have built in a one-partition run — partition, target
    materialization of that partition, severity, blocking from the spec — and each check's output is
    emitted once. Dagster still fails the step on any failed blocking ERROR evaluation
    (``DagsterAssetCheckFailedError``), so downstream steps of the range are skipped as in a single run.
    """
    assets_def = context.assets_def
    output_names = {spec.key: name for name, spec in assets_def.check_specs_by_output_name.items()}
    targets = _latest_materializations(context, key, sorted({partition for partition, _ in checks}))
    emitted: set[dg.AssetCheckKey] = set()
    for partition, result in checks:
        check_key = dg.AssetCheckKey(result.asset_key or key, result.check_name)
        spec = assets_def.get_spec_for_check_key(check_key)
        if check_key.asset_key != key and (check_key.asset_key, partition) not in targets:
            targets.update(_latest_materializations(context, check_key.asset_key, [partition]))
        if check_key not in emitted and check_key in output_names:
            emitted.add(check_key)
            yield dg.Output(None, output_name=output_names[check_key])
        yield dg.AssetCheckEvaluation(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=result.passed,
            metadata=result.metadata,
            target_materialization_data=targets.get((check_key.asset_key, partition)),
            severity=result.severity,
            description=result.description,
            blocking=spec.blocking,
            partition=partition if spec.partitions_def is not None else None,
        )


def _latest_materializations(
    context: dg.AssetExecutionContext, key: dg.AssetKey, partitions: list[str]
) -> dict[tuple[dg.AssetKey, str], Any]:
    """The latest materialization of each of ``partitions`` of ``key``, as a check evaluation's target:
    one query for the whole range (records come newest first), not one per partition."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    targets: dict[tuple[dg.AssetKey, str], Any] = {}
    cursor = None
    while partitions and len(targets) < len(partitions):
        page = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions),
            limit=max(len(partitions), 100),
            cursor=cursor,
        )
        for record in page.records:
            target = (key, record.partition_key)
            if record.partition_key is not None and target not in targets:
                targets[target] = AssetCheckEvaluationTargetMaterializationData(
                    run_id=record.event_log_entry.run_id, storage_id=record.storage_id, timestamp=record.timestamp
                )
        if not page.has_more:
            break
        cursor = page.cursor
    return targets


def _raw_asset(source: Source) -> dg.AssetsDefinition:
    spec = source.spec
    descriptions = _column_descriptions(source)

    @dg.asset(
        **_common(
            source,
            "raw",
            "Bronze: landed records typed to the declared schema. Lines that are no record and rows "
            "with a value that does not parse (per column `on_parse_error`) go to quarantine/raw with the reason; "
            "values kept as null under `on_parse_error: null` keep their landed text in `_parse_errors`.",
        ),
        check_specs=_partitioned_checks(source, raw_check_specs(source)),
        deps=[dg.AssetKey(key) for key in source.connector.upstream_assets(spec.name)],
    )
    @_for_each_partition(source, "raw")
    def raw(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        gx: GreatExpectationsResource,
        partition: str | None,
        log: Any,
    ) -> Iterator[Any]:
        with _only_transient_retries():
            store = lake.get()
            fetched: FetchResult = source.connector.fetch(
                FetchRequest(
                    source=spec.name,
                    partition_key=partition,
                    lake=store,
                    columns=tuple(c.landed_name for c in spec.columns),
                    column_types={c.landed_name: c.type for c in spec.columns},
                )
            )
            # consume: each landed text column is freed as soon as it is typed
            coerced = coerce_to_schema(fetched.records, source.table, consume=True)
            fetched.records = None
            release_freed_memory()
            failing = coerced.failing_policy_columns
            if failing:
                raise dg.Failure(
                    f"{spec.name}: value(s) that do not parse in column(s) with on_parse_error: fail — "
                    + "; ".join(_parse_failure_examples(coerced, column) for column in failing),
                    allow_retries=False,
                )
            parsed = contract.parse_rejects(coerced, spec)
            rejects = contract.read_rejects(fetched.rejects, spec)
            quarantine = (
                pd.concat([rejects, parsed.quarantine], ignore_index=True) if len(rejects) else parsed.quarantine
            )
            write_quarantine(store, spec.name, partition, "raw", quarantine)
            if len(quarantine):  # one event: each log line is a row in the run's event log
                log.warning(_quarantine_summary(spec.name, quarantine))
            # consume: the unfiltered typed table is freed column by column as the filtered one is built
            frame = coerced.frame if parsed.keep.all() else select_rows(coerced.frame, parsed.keep, consume=True)
            coerced.frame = frame
            nulled = {
                c: n for c, n in coerced.parse_failures.items() if spec.parse_error_policy(spec.column(c)) == "null"
            }
            findings = RawFindings(
                landed_schema=dict(fetched.landed_schema),
                parse_failures=dict(coerced.parse_failures),
                non_null=dict(coerced.non_null),
                parse_quarantined=parsed.removed,
                parse_nulled=nulled,
                empty_inputs=_empty_inputs(fetched, pulled=source.connector.landing_settings() is None),
                inputs=max(len(fetched.inputs), 1 if getattr(fetched, "empty", None) else 0),
                rows=len(frame),
                keyed_records=fetched.keyed_records,
            )
            yield dg.Output(
                frame,
                metadata={
                    "input_files": dg.MetadataValue.json(fetched.inputs[:200]),
                    "input_count": len(fetched.inputs),
                    "rejected_lines": len(rejects),
                    "parse_failures": dg.MetadataValue.json(findings.parse_failures),
                    "parse_quarantined_rows": parsed.removed,
                    "missing_columns": dg.MetadataValue.json(list(coerced.missing_columns)),
                    "extra_columns": dg.MetadataValue.json(list(coerced.extra_columns)),
                    "empty_inputs": dg.MetadataValue.json(findings.empty_inputs),
                    "landed_schema": dg.MetadataValue.json(fetched.landed_schema),
                    # What arrived, not what we typed it to: Dagster's column-schema-change checks compare this.
                    "dagster/column_schema": dg.MetadataValue.table_schema(
                        landed_column_schema(
                            fetched.landed_schema, {c.landed_name: c.description for c in spec.columns}
                        )
                    ),
                    "lepton/typed_schema": dg.MetadataValue.table_schema(table_schema(frame, descriptions)),
                },
            )
            yield from evaluate_raw(_governance_context(log, source, store, gx, partition), findings)

    return raw


def _parse_failure_examples(coerced: Any, column: str) -> str:
    positions = np.flatnonzero(coerced.failed_masks[column])[:3]
    texts = [repr(str(v)) for v in coerced.failed_text[column].loc[positions].tolist()]
    return (
        f"{column}: {coerced.parse_failures[column]} value(s) are not {coerced.expected[column]}, e.g. "
        f"{', '.join(texts)}"
    )


def _quarantine_summary(source: str, quarantine: pd.DataFrame, shown: int = 5) -> str:
    """``<source>: quarantined N row(s) at raw`` and the first few, one line each with file, line and reason."""
    lines = [
        f"  {r['_source_file']} line {r['_source_line']}: {r['_reason']}" for _, r in quarantine.head(shown).iterrows()
    ]
    more = f"\n  … and {len(quarantine) - shown} more (quarantine zone, stage raw)" if len(quarantine) > shown else ""
    return f"{source}: quarantined {len(quarantine)} row(s) at raw:\n" + "\n".join(lines) + more


def _empty_inputs(fetched: FetchResult, pulled: bool) -> list[str]:
    """Inputs that held no record at all: landed files that are 0-byte, header-only, without a JSON object
    or a row; for pulled sources (HTTP, SQL) the window itself, in the connector's words (``empty``) —
    an API's last, empty page is how pagination ends, not an empty input."""
    if pulled:
        return [str(fetched.empty)] if fetched.empty else []
    return [entry["path"] for entry in fetched.inputs if not entry.get("rows") and not entry.get("rejected")]


def _column_descriptions(source: Source) -> dict[str, str]:
    descriptions = {c.name: c.description or f"{c.type}" for c in source.spec.columns}
    descriptions.update(
        {
            "_source_file": "landing file, URL page or query the row came from",
            "_source_line": "line / record number in that input",
            "_parse_errors": "JSON {column: landed text} of values that did not parse (on_parse_error: null)",
            "_replaced": "JSON {column: {original, rule, action}} of values a cleaning rule nulled, clipped or filled",
        }
    )
    return descriptions


def _clean_asset(source: Source) -> dg.AssetsDefinition:
    spec = source.spec
    descriptions = _column_descriptions(source)

    @dg.asset(
        **_common(
            source,
            "clean",
            "Silver: deduplicated, denoised, imputed and normalized by the declared cleaning rules; "
            "rows without a required value (and late arrivals, when the policy says so) are quarantined.",
        ),
        deps=[asset_key(spec.name, "raw")],
        check_specs=_partitioned_checks(source, clean_check_specs(source)),
    )
    @_for_each_partition(source, "clean")
    def clean(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        gx: GreatExpectationsResource,
        partition: str | None,
        log: Any,
    ) -> Iterator[Any]:
        with _only_transient_retries():
            store = lake.get()
            raw, _ = _read_upstream(store, "raw", spec.name, partition)
            raw_rows = len(raw)
            result = run_cleaning(raw, source.rules, consume=True)
            del raw  # a step input would stay alive until the step ends: a whole partition under validation's peak
            release_freed_memory()
            required = contract.required_rejects(result.frame, spec)
            frame = result.frame if required.keep.all() else select_rows(result.frame, required.keep)
            late, late_count, late_sample = contract.late_rejects(frame, spec, partition)
            frame = frame if late.keep.all() else select_rows(frame, late.keep)
            removed = [contract.cleaning_quarantine(result.removed, spec), required.quarantine, late.quarantine]
            write_quarantine(
                store,
                spec.name,
                partition,
                "clean",
                pd.concat([q for q in removed if len(q)], ignore_index=True) if any(len(q) for q in removed) else None,
            )
            raw_quarantined = quarantined_rows(store, spec.name, partition, "raw")
            cleaning = result.reconciliation()
            ledger = clean_ledger(raw_rows, raw_quarantined, cleaning, required.removed, late.removed)
            write_json(
                store,
                spec.name,
                partition,
                CLEANING_FILE,
                {"reconciliation": ledger, "cleaning": cleaning, "lineage": result.lineage},
            )
            governance = _governance_context(log, source, store, gx, partition)
            # The checks are computed on a worker thread while this thread hands the table to the IO manager:
            # the Parquet encoder releases the GIL, so validation and the write proceed at the same time.
            # The worker gets its own (copy-on-write) view: the IO manager tags the yielded object's attrs.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{spec.name}-clean-checks") as worker:
                measuring = worker.submit(measure_clean, governance, frame.reset_index(drop=True))
                yield dg.Output(
                    frame,
                    metadata={
                        "reconciliation": dg.MetadataValue.json(ledger),
                        "duplicates_removed": result.duplicates_removed,
                        "rows_dropped": result.rows_dropped,
                        "required_removed": required.removed,
                        "late_rows": late_count,
                        "rules": dg.MetadataValue.json(result.reports),
                        "column_lineage": dg.MetadataValue.json(result.lineage),
                        "dagster/column_schema": dg.MetadataValue.table_schema(table_schema(frame, descriptions)),
                    },
                )
                measured = measuring.result()
            # Set by the lake IO manager on this very object when it published it (popped: pandas would
            # carry it onto frames derived from this one, which are not that file's content).
            clean_file = frame.attrs.pop(FILE_IDENTITY_ATTR, None)
            yield from record_clean(governance, measured, clean_file).results
            yield from contract_results(
                governance, required.removed, required.quarantine["_reason"].head(5).tolist(), late_count, late_sample
            )

    return clean


def _governed_asset(source: Source) -> dg.AssetsDefinition:
    spec = source.spec
    descriptions = _column_descriptions(source)

    @dg.asset(
        **_common(
            source,
            "governed",
            "Gold: the certified table downstream users read. Only rows that pass the "
            "source's contract and expectations; the rest are in the quarantine zone with the reason. "
            "Certification is refused (nothing published) when a blocking check fails or the row-loss guard trips.",
        ),
        deps=[asset_key(spec.name, "clean")],
        check_specs=_partitioned_checks(source, governed_check_specs(source)),
        output_required=False,  # a refused certification publishes nothing
    )
    @_for_each_partition(source, "governed")
    def governed(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        gx: GreatExpectationsResource,
        partition: str | None,
        log: Any,
    ) -> Iterator[Any]:
        with _only_transient_retries():
            store = lake.get()
            ledger = _read_cleaning_record(store, spec.name, partition)["reconciliation"]
            clean, clean_file = _read_upstream(store, "clean", spec.name, partition)
            result = certify(_governance_context(log, source, store, gx, partition), clean, ledger, clean_file)
            del clean  # freed before the governed table is written, not at the end of the step
            if result.refused:
                yield from result.check_results  # recorded as failed checks, then the step fails unpublished
                raise dg.Failure(result.refused, allow_retries=False)
            yield dg.Output(
                result.frame,
                metadata={
                    **result.metadata,
                    "quarantined_rows": result.quarantined_rows,
                    "dagster/column_schema": dg.MetadataValue.table_schema(table_schema(result.frame, descriptions)),
                },
            )
            yield from result.check_results

    return governed


def _read_upstream(lake: Lake, zone: str, source: str, partition: str | None) -> tuple[pd.DataFrame, str | None]:
    """The upstream partition, read by the step itself rather than as a Dagster input.

    Why not ``ins``: Dagster keeps an input object alive until the step finishes, so the raw table would
    sit under the clean step's whole validation peak (and clean under governed's write). The asset graph
    is the same either way (``deps``); the IO manager still writes every stage and records its metadata.
    Also returns the identity of the file read (``lake.store.file_identity``; None if it changed mid-read).
    """
    release_freed_memory()
    directory = lake.table_dir(zone, source, partition)
    try:
        frame = read_parquet_dir(directory)
    except FileNotFoundError as missing:
        where = f"partition {partition}" if partition else "the table"
        raise dg.Failure(
            f"{source}/{zone} has no data for {where} at {directory}: materialize {source}/{zone} first",
            allow_retries=False,
        ) from missing  # waiting will not make it appear
    return frame, frame.attrs.pop(FILE_IDENTITY_ATTR, None)


def _read_cleaning_record(lake: Lake, source: str, partition: str | None) -> dict:
    recorded = read_json(lake, source, partition, CLEANING_FILE)
    if recorded is None:
        where = quality_dir(lake, source, partition) / CLEANING_FILE
        raise dg.Failure(
            f"{source}: {where} is missing — materialize {source}/clean for this partition first", allow_retries=False
        )
    return recorded
