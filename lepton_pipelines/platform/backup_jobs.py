"""Dagster wiring for lake backups: the ``lake_backup`` and ``lake_restore`` jobs and their schedule.

The logic lives in ``lepton_pipelines.lake.backup``; these ops only translate its results into
metadata and its errors into retry decisions (transient storage errors retry with backoff, integrity
and configuration errors fail at once). No ``from __future__ import annotations`` here: Dagster reads
the ops' config and resource annotations at import time.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta

from dagster import (
    Config,
    ConfigurableResource,
    DefaultScheduleStatus,
    Failure,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from lepton_pipelines.lake.backup import BACKUP_ZONES, BackupError, BackupRepository, VerifyReport
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.platform.retries import (
    TRANSIENT_RETRY_POLICY,
    is_transient_error,
    max_runtime_tags,
    permanent_failure,
)

BACKUP_CONCURRENCY_TAG = "lepton/lake-backup"
"""Backups, pruning and restores must not interleave (pruning could delete objects a concurrent
backup has stored but not yet referenced). Every backup/restore run carries this tag; dagster.yaml
limits it to one run at a time."""


class LakeBackupResource(ConfigurableResource):
    """Where the backups live, for the lake it is given (the nested ``LakeResource``, configured once).
    An unset ``backup_url`` falls back to ``LEPTON_BACKUP_URL``; the backup location uses the lake's S3
    endpoint; credentials only from AWS env vars."""

    lake: LakeResource
    backup_url: str | None = Field(default=None, description="Backup location; default $LEPTON_BACKUP_URL")
    keep_snapshots: int = Field(default=14, ge=1, description="Retention: newest N snapshots are kept")

    def repository(self) -> BackupRepository:
        return BackupRepository(self.backup_url, self.lake.s3_endpoint_url)

    def open_lake(self, url: str | None = None) -> Lake:
        """The configured lake, or another lake at ``url`` on the same S3 endpoint (restore targets)."""
        return Lake(url, self.lake.s3_endpoint_url) if url else self.lake.get()


class BackupConfig(Config):
    zones: list[str] = Field(default=list(BACKUP_ZONES), description="Lake zones to snapshot")
    rehash: bool = Field(default=False, description="Read every file instead of trusting fingerprints")


class RestoreConfig(Config):
    snapshot_id: str = Field(description="Snapshot to restore ('latest' for the newest); see `lepton-lake list`")
    target_lake_url: str | None = Field(default=None, description="Restore into another lake (default: the lake)")
    exact: bool = Field(default=False, description="Also delete files in the snapshot's zones it does not contain")
    overwrite_all: bool = Field(
        default=False, description="Rewrite every file of the snapshot (default: only files missing or different)"
    )


@contextmanager
def storage_errors_classified() -> Iterator[None]:
    """Let transient errors through to the RetryPolicy; turn everything else into a final failure."""
    try:
        yield
    except Failure:
        raise
    except BackupError as exc:
        raise permanent_failure(exc) from exc
    except Exception as exc:
        if is_transient_error(exc):
            raise
        raise permanent_failure(exc) from exc


def _logged(context: OpExecutionContext) -> Callable[[str], None]:
    return context.log.debug


def _fail_unless_ok(report: VerifyReport, what: str) -> None:
    if not report.ok:
        raise Failure(
            description=f"{what}: {report.describe()}",
            metadata={
                "missing": MetadataValue.json(list(report.missing[:100])),
                "corrupted": MetadataValue.json(list(report.corrupted[:100])),
            },
            allow_retries=False,
        )


@op(retry_policy=TRANSIENT_RETRY_POLICY, out=Out(str, description="snapshot id"))
def snapshot_lake(context: OpExecutionContext, config: BackupConfig, lake_backup: LakeBackupResource) -> str:
    """Copy new or changed files of the protected zones into the backup location and write a manifest."""
    with storage_errors_classified():
        repo = lake_backup.repository()
        result = repo.backup(lake_backup.open_lake(), zones=config.zones, rehash=config.rehash, log=_logged(context))
    context.add_output_metadata({**asdict(result), "backup_url": MetadataValue.text(repo.url)})
    context.log.info(
        f"snapshot {result.snapshot_id}: {result.files} files; {result.objects_copied} objects copied, "
        f"{result.objects_reused} unchanged, {result.objects_healed} damaged objects re-copied"
    )
    return result.snapshot_id


@op(retry_policy=TRANSIENT_RETRY_POLICY, out=Out(str))
def verify_lake_snapshot(context: OpExecutionContext, snapshot_id: str, lake_backup: LakeBackupResource) -> str:
    """Re-hash every object of the new snapshot: a backup is only as good as its last verification.
    Objects found damaged are fetched again from the lake when the lake file still matches."""
    with storage_errors_classified():
        report = lake_backup.repository().verify(
            snapshot_id, deep=True, repair_from=lake_backup.open_lake(), log=_logged(context)
        )
    _fail_unless_ok(report, "backup verification failed")
    context.add_output_metadata({"files_verified": report.checked, "objects_repaired": len(report.repaired)})
    return snapshot_id


@op(retry_policy=TRANSIENT_RETRY_POLICY, ins={"verified_snapshot_id": In(str)}, out=Out(Nothing))
def apply_backup_retention(
    context: OpExecutionContext, verified_snapshot_id: str, lake_backup: LakeBackupResource
) -> None:
    """Delete snapshots beyond the retention count and unreferenced objects — only after the newest
    snapshot verified, so a failing backup never costs an older good one."""
    with storage_errors_classified():
        pruned = lake_backup.repository().prune(lake_backup.keep_snapshots, log=_logged(context))
    context.log.info(
        f"kept {len(pruned.kept)} snapshots (newest {verified_snapshot_id}); deleted "
        f"{len(pruned.deleted_snapshots)} snapshots and {pruned.deleted_objects} objects"
    )


@op(retry_policy=TRANSIENT_RETRY_POLICY, out=Out(dict, description="snapshot_id and the lake it was restored into"))
def restore_lake_snapshot(context: OpExecutionContext, config: RestoreConfig, lake_backup: LakeBackupResource) -> dict:
    lake = lake_backup.open_lake(config.target_lake_url)
    with storage_errors_classified():
        result = lake_backup.repository().restore(
            lake, config.snapshot_id, exact=config.exact, overwrite_all=config.overwrite_all, log=_logged(context)
        )
    context.add_output_metadata(
        {
            "snapshot_id": result.snapshot_id,
            "files": result.restored,
            "bytes": result.bytes,
            "unchanged": result.unchanged,
            "lake_url": lake.url,
            "removed": MetadataValue.json(list(result.removed[:100])),
        }
    )
    return {"snapshot_id": result.snapshot_id, "lake_url": lake.url}


@op(retry_policy=TRANSIENT_RETRY_POLICY)
def verify_restored_lake(context: OpExecutionContext, restored: dict, lake_backup: LakeBackupResource) -> None:
    """Read the restored files back from the lake and compare them with the manifest."""
    with storage_errors_classified():
        report = lake_backup.repository().verify_lake(
            lake_backup.open_lake(restored["lake_url"]), restored["snapshot_id"]
        )
    _fail_unless_ok(report, "restored lake does not match the snapshot")
    context.add_output_metadata({"files_verified": report.checked})
    context.log.info(report.describe())


@job(
    description="Snapshot the governed, quarantine, quality and model zones (incremental), verify, apply retention.",
    tags={**max_runtime_tags(timedelta(hours=6)), BACKUP_CONCURRENCY_TAG: "lake"},
)
def lake_backup():
    apply_backup_retention(verify_lake_snapshot(snapshot_lake()))


@job(
    description="Restore a lake snapshot (config: snapshot_id) and verify every restored file's checksum.",
    tags={**max_runtime_tags(timedelta(hours=6)), BACKUP_CONCURRENCY_TAG: "lake"},
)
def lake_restore():
    verify_restored_lake(restore_lake_snapshot())


lake_backup_daily = ScheduleDefinition(
    name="lake_backup_daily",
    job=lake_backup,
    cron_schedule="15 2 * * *",
    execution_timezone="UTC",
    # Running by default wherever a backup location is configured, so production is protected from
    # the first deploy; stopped on laptops, where there is nowhere to back up to.
    default_status=DefaultScheduleStatus.RUNNING
    if os.environ.get("LEPTON_BACKUP_URL")
    else DefaultScheduleStatus.STOPPED,
)
