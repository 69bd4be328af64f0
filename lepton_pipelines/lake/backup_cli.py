"""``lepton-lake``: back up, list, verify and restore lake snapshots from a shell.

The same operations as the ``lake_backup`` / ``lake_restore`` Dagster jobs, for when Dagster itself
is what needs repairing (restoring after losing the instance, or on a laptop). Locations come from
``LEPTON_LAKE_URL`` / ``LEPTON_BACKUP_URL`` unless given; S3 credentials only from the standard AWS
environment variables.

Exit codes: 0 success, 1 verification/integrity failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

from lepton_pipelines.lake.backup import BACKUP_ZONES, BackupError, BackupRepository, IntegrityError
from lepton_pipelines.lake.store import Lake


def build_parser(*more_commands: Callable[[argparse._SubParsersAction], None]) -> argparse.ArgumentParser:
    """The backup commands; ``more_commands`` register others (``lepton-lake sql``: ``analytics.sql_cli``)."""
    parser = argparse.ArgumentParser(prog="lepton-lake", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", help="lake root (default: $LEPTON_LAKE_URL)")
    parser.add_argument("--backup-url", help="backup location (default: $LEPTON_BACKUP_URL)")
    parser.add_argument("--s3-endpoint-url", help="S3 endpoint override (default: $LEPTON_S3_ENDPOINT_URL)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    backup = commands.add_parser(
        "backup",
        help="snapshot the lake (incremental), verify it (repairing damaged objects from the lake), apply retention",
    )
    backup.add_argument("--zones", nargs="+", default=list(BACKUP_ZONES), help="zones to snapshot")
    backup.add_argument("--keep", type=int, default=None, help="keep the newest N snapshots (default: keep all)")
    backup.add_argument(
        "--rehash",
        action="store_true",
        help="read every lake file instead of trusting fingerprints, and re-copy stored objects whose bytes do not "
        "match",
    )

    commands.add_parser("list", help="list snapshots, oldest first")

    verify = commands.add_parser("verify", help="re-hash a snapshot's objects against its manifest")
    verify.add_argument("snapshot", nargs="?", default="latest")
    verify.add_argument("--shallow", action="store_true", help="check existence and sizes only")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="re-copy missing or damaged objects from the lake when the lake file still matches the manifest",
    )

    restore = commands.add_parser("restore", help="restore a snapshot into the lake and verify checksums")
    restore.add_argument("snapshot", help="snapshot id, or 'latest'")
    restore.add_argument("--to", dest="target", help="restore into this lake instead of --lake")
    restore.add_argument("--exact", action="store_true", help="also delete files the snapshot does not contain")
    restore.add_argument(
        "--all",
        dest="overwrite_all",
        action="store_true",
        help="rewrite every file of the snapshot (default: only files that are missing or differ)",
    )
    for add in more_commands:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    try:
        repo = BackupRepository(args.backup_url, args.s3_endpoint_url)
        if args.command == "backup":
            lake = Lake(args.lake, args.s3_endpoint_url)
            result = repo.backup(lake, zones=args.zones, rehash=args.rehash, log=say)
            # The lake is at hand: an object found damaged now is fetched again instead of leaving
            # a snapshot that is born failing verification.
            report = repo.verify(result.snapshot_id, repair_from=lake, log=say)
            pruned = repo.prune(args.keep, log=say) if args.keep and report.ok else None
            healed = f", {result.objects_healed} damaged objects re-copied" if result.objects_healed else ""
            _emit(
                args,
                {"backup": asdict(result), "verify": _report(report), "prune": asdict(pruned) if pruned else None},
                f"snapshot {result.snapshot_id}: {result.files} files, {result.objects_copied} objects copied "
                f"({result.bytes_copied} bytes), {result.objects_reused} unchanged{healed}\n{report.describe()}",
            )
            return 0 if report.ok else 1
        if args.command == "list":
            manifests = repo.manifests()
            _emit(
                args,
                [
                    {
                        "snapshot_id": m.snapshot_id,
                        "created_at": m.created_at,
                        "files": len(m.files),
                        "bytes": m.total_bytes,
                        "zones": list(m.zones),
                    }
                    for m in manifests
                ],
                "\n".join(
                    f"{m.snapshot_id}  {m.created_at}  {len(m.files):>7} files  {m.total_bytes:>14} bytes"
                    for m in manifests
                )
                or "no snapshots",
            )
            return 0
        if args.command == "verify":
            lake = Lake(args.lake, args.s3_endpoint_url) if args.repair else None
            report = repo.verify(args.snapshot, deep=not args.shallow, repair_from=lake, log=say)
            _emit(args, _report(report), report.describe())
            return 0 if report.ok else 1
        if args.command == "restore":
            lake = Lake(args.target or args.lake, args.s3_endpoint_url)
            result = repo.restore(lake, args.snapshot, exact=args.exact, overwrite_all=args.overwrite_all, log=say)
            report = repo.verify_lake(lake, result.snapshot_id)
            _emit(
                args,
                {"restore": asdict(result), "verify": _report(report)},
                f"restored snapshot {result.snapshot_id}: {result.restored} files ({result.bytes} bytes) "
                f"into {lake.url}, {result.unchanged} already matched\n{report.describe()}",
            )
            return 0 if report.ok else 1
    except IntegrityError as exc:
        print(f"lepton-lake: {exc}", file=sys.stderr)
        return 1
    except BackupError as exc:
        print(f"lepton-lake: {exc}", file=sys.stderr)
        return 2
    return 2


def _report(report) -> dict:
    return {**asdict(report), "ok": report.ok}


def _emit(args: argparse.Namespace, data, text: str) -> None:
    print(json.dumps(data, indent=1) if args.json else text)


if __name__ == "__main__":
    raise SystemExit(main())
