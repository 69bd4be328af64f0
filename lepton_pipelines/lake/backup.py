"""Lake backups: content-addressed, incremental snapshots with manifests, retention and restore.

Pure storage logic (no Dagster imports) so the ``lepton-lake`` CLI, the ``lake_backup`` /
``lake_restore`` jobs and the tests share one implementation.

Why content addressing: a lake is mostly immutable partitions. Storing every file once under its
SHA-256 (``objects/ab/abcdef…``) makes a daily snapshot cost only the partitions that changed, makes
every snapshot a complete, independently restorable point in time, and turns "verify" into
re-hashing objects against the name they are stored under.

Backup location layout (``LEPTON_BACKUP_URL``: a folder or ``s3://bucket/prefix``)::

    objects/<sha[:2]>/<sha256>          file contents, written once, never modified
    snapshots/<snapshot_id>.json        the manifest: every file's lake path, size and sha256

A manifest is written last, so a snapshot exists only once all of its objects are stored. Retention
deletes old manifests first and then the objects no remaining manifest references.

Backups heal: an object is only reused when it is still what its name says (its size always, its
bytes too with ``rehash``); a damaged one is copied again from the lake, and ``verify(repair_from=lake)``
re-fetches damaged objects whose lake file still hashes to the manifest's checksum. Restores check
first and write after: every object the restore needs is copied into a staging file and hashed before
any live file is replaced, and only files that are missing or differ from the snapshot are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from lepton_pipelines.lake.atomic import is_staging_name, publish, staging_path, write_atomic
from lepton_pipelines.lake.store import Lake, open_location

BACKUP_ZONES: tuple[str, ...] = ("governed", "quarantine", "_quality", "models")
"""What a backup protects: the zones that cannot be rebuilt from landing/raw by re-running assets
(governed tables are the product; quarantine and quality history are evidence; models are trained)."""

MANIFEST_FORMAT = "lepton-lake-backup/1"
CHUNK_BYTES = 8 * 1024 * 1024
SNAPSHOT_ID_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")


class BackupError(Exception):
    """A backup, verify or restore problem a person has to act on (not a transient I/O error)."""


class SnapshotNotFound(BackupError):
    pass


class IntegrityError(BackupError):
    """Stored or restored bytes do not match the checksum recorded in the manifest."""


@dataclass(frozen=True)
class FileEntry:
    """One lake file in a snapshot. ``path`` is relative to the lake root, POSIX separators."""

    path: str
    size: int
    sha256: str
    fingerprint: str = ""  # mtime/ETag seen at backup time: lets the next backup skip re-hashing


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    created_at: str
    lake_url: str
    zones: tuple[str, ...]
    files: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        body = {
            "format": MANIFEST_FORMAT,
            "snapshot_id": self.snapshot_id,
            "created_at": self.created_at,
            "lake_url": self.lake_url,
            "zones": list(self.zones),
            "file_count": len(self.files),
            "total_bytes": self.total_bytes,
            "files": [asdict(f) for f in self.files],
        }
        return json.dumps(body, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            body = json.loads(text)
            if body.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {body.get('format')!r}, expected {MANIFEST_FORMAT!r}")
            return cls(
                snapshot_id=body["snapshot_id"],
                created_at=body["created_at"],
                lake_url=body["lake_url"],
                zones=tuple(body["zones"]),
                files=tuple(FileEntry(**f) for f in body["files"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"manifest {where} is not a valid Lepton backup manifest: {exc}") from exc


@dataclass(frozen=True)
class BackupResult:
    snapshot_id: str
    files: int
    bytes: int
    objects_copied: int
    bytes_copied: int
    objects_reused: int
    hashed: int  # files whose content had to be read to learn their checksum
    objects_healed: int = 0  # stored objects found damaged (wrong size, or wrong bytes with rehash) and copied again


@dataclass(frozen=True)
class VerifyReport:
    """``missing``/``corrupted`` are what is still wrong; ``repaired`` what a repair fixed (lake paths)."""

    snapshot_id: str
    checked: int
    missing: tuple[str, ...] = ()
    corrupted: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupted

    def describe(self) -> str:
        repaired = f"; {len(self.repaired)} damaged objects re-copied from the lake" if self.repaired else ""
        if self.ok:
            return f"snapshot {self.snapshot_id}: {self.checked} files verified{repaired}"
        parts = [f"snapshot {self.snapshot_id}: {self.checked} files checked"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing objects (e.g. {', '.join(self.missing[:3])})")
        if self.corrupted:
            parts.append(f"{len(self.corrupted)} objects fail their checksum (e.g. {', '.join(self.corrupted[:3])})")
        return "; ".join(parts) + repaired


@dataclass(frozen=True)
class RestoreResult:
    """``restored`` files were written; ``unchanged`` already matched the snapshot and were left alone."""

    snapshot_id: str
    restored: int
    bytes: int
    removed: tuple[str, ...] = field(default_factory=tuple)
    unchanged: int = 0
    restored_paths: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PruneResult:
    kept: tuple[str, ...]
    deleted_snapshots: tuple[str, ...]
    deleted_objects: int


def default_backup_url() -> str:
    url = os.environ.get("LEPTON_BACKUP_URL", "").strip()
    if not url:
        raise BackupError(
            "no backup location: set LEPTON_BACKUP_URL to a folder or s3://bucket/prefix "
            "(somewhere other than the lake itself)"
        )
    return url


def new_snapshot_id(now: datetime | None = None) -> str:
    """Sortable by time to the microsecond (retention and ``latest`` rely on it); the random suffix
    keeps concurrent writers apart."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def object_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


def fingerprint_of(info: dict[str, Any]) -> str:
    """What tells us a file is unchanged without reading it: the S3 ETag, else size+mtime."""
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"etag:{str(etag).strip(chr(34))}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    if mtime is None:
        return ""
    if isinstance(mtime, datetime):
        mtime = mtime.timestamp()
    return f"mtime:{float(mtime):.6f}:{int(info.get('size') or 0)}"


class BackupRepository:
    """A backup location: its objects, its snapshot manifests, and what can be done with them."""

    def __init__(self, url: str | None = None, s3_endpoint_url: str | None = None):
        self.url = (url or default_backup_url()).rstrip("/")
        self.root = open_location(self.url, s3_endpoint_url)

    @property
    def fs(self):
        return self.root.fs

    def _abs(self, key: str) -> str:
        return (self.root / key).path

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot_ids(self) -> list[str]:
        """All complete snapshots, oldest first."""
        directory = self._abs("snapshots")
        _invalidate(self.fs)
        if not self.fs.exists(directory):
            return []
        names = [PurePosixPath(p).name for p in self.fs.ls(directory, detail=False)]
        return sorted(n[: -len(".json")] for n in names if n.endswith(".json") and SNAPSHOT_ID_PATTERN.match(n[:-5]))

    def latest_snapshot_id(self) -> str | None:
        ids = self.snapshot_ids()
        return ids[-1] if ids else None

    def resolve(self, snapshot_id: str | None) -> str:
        """``None`` or ``"latest"`` means the newest snapshot; anything else must exist."""
        ids = self.snapshot_ids()
        if snapshot_id in (None, "", "latest"):
            if not ids:
                raise SnapshotNotFound(f"backup location {self.url} holds no snapshots yet")
            return ids[-1]
        if snapshot_id not in ids:
            known = ", ".join(ids[-5:]) or "none"
            raise SnapshotNotFound(
                f"snapshot {snapshot_id!r} not found in {self.url} (newest: {known}); list them with `lepton-lake list`"
            )
        return snapshot_id

    def load_manifest(self, snapshot_id: str | None = None) -> Manifest:
        snapshot_id = self.resolve(snapshot_id)
        key = self._abs(f"snapshots/{snapshot_id}.json")
        with self.fs.open(key, "rb") as handle:
            return Manifest.from_json(handle.read().decode("utf-8"), where=f"{self.url}/snapshots/{snapshot_id}.json")

    def manifests(self) -> list[Manifest]:
        return [self.load_manifest(s) for s in self.snapshot_ids()]

    def _write_manifest(self, manifest: Manifest) -> None:
        write_atomic(self.root / "snapshots" / f"{manifest.snapshot_id}.json", manifest.to_json().encode())

    # -- objects -------------------------------------------------------------------------------
    def object_sizes(self) -> dict[str, int]:
        """Every stored object and its size, from one recursive listing (cheaper than a stat per
        file on S3). The size is what lets every backup notice a truncated object for free."""
        directory = self._abs("objects")
        _invalidate(self.fs)
        if not self.fs.exists(directory):
            return {}
        return {
            PurePosixPath(path).name: int(info.get("size") or 0)
            for path, info in self.fs.find(directory, detail=True).items()
            if info.get("type") != "directory" and not is_staging_name(PurePosixPath(path).name)
        }

    def object_shas(self) -> set[str]:
        return set(self.object_sizes())

    def object_path(self, sha256: str) -> str:
        return self._abs(object_key(sha256))

    def _store_object(self, source_fs, source_path: str, expected_sha: str) -> int:
        """Copy a lake file into ``objects/`` under its checksum, re-hashing the bytes as they stream.

        If the file changed between hashing and copying, the copy would be stored under the wrong
        name; the re-hash catches that and the backup stops instead of recording a lie. The copy is
        staged and then moved over the final name, so re-storing a damaged object replaces it whole.
        """
        final = self.object_path(expected_sha)
        staged = staging_path(final)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        try:
            sha, size = self._copy_hashing(source_fs, source_path, staged)
            if sha != expected_sha:
                raise BackupError(
                    f"{source_path} changed while it was being backed up; re-run the backup "
                    "(it will pick up the new version)"
                )
            publish(self.fs, staged, final)
        finally:
            if self.fs.exists(staged):
                self.fs.rm(staged)
        return size

    def _ingest(self, source_fs, source_path: str) -> tuple[str, str, int]:
        """Copy a lake file of unknown checksum into a staging object while hashing it: one read of
        the file instead of a hashing pass and a copying pass. Returns (staging path, sha256, size);
        the caller publishes it under its checksum or drops it when that object is already stored.
        The lake publishes files by atomic replace (and S3 objects are immutable), so an open handle
        reads one whole version of the file: the checksum always describes the bytes stored."""
        directory = self._abs("objects")
        self.fs.makedirs(directory, exist_ok=True)
        staged = staging_path(f"{directory}/ingest")
        try:
            sha, size = self._copy_hashing(source_fs, source_path, staged)
        except BaseException:
            if self.fs.exists(staged):
                self.fs.rm(staged)
            raise
        return staged, sha, size

    def _copy_hashing(self, source_fs, source_path: str, staged: str) -> tuple[str, int]:
        """Copy ``source_path`` to ``staged`` in one pass, hashing the bytes as they go: (sha256, size)."""
        digest = hashlib.sha256()
        size = 0
        with source_fs.open(source_path, "rb") as src, self.fs.open(staged, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def _object_intact(self, sha256: str) -> bool:
        try:
            return _sha256_of(self.fs, self.object_path(sha256)) == sha256
        except FileNotFoundError:
            return False

    # -- the operations ------------------------------------------------------------------------
    def backup(
        self,
        lake: Lake,
        zones: Sequence[str] = BACKUP_ZONES,
        rehash: bool = False,
        now: datetime | None = None,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> BackupResult:
        """Snapshot ``zones`` of ``lake``. Only objects the location does not already hold intact are copied.

        Checksums of files whose fingerprint (ETag, or size+mtime) matches the previous snapshot are
        reused without reading the file. A stored object is reused only if its size is right; with
        ``rehash=True`` every lake file is read and every reused object is re-hashed too, and any
        object whose bytes no longer match its name is copied again from the lake (a periodic full
        check that also heals bit rot in the backup).
        """
        _check_not_nested(lake, self)
        previous = {} if rehash else _fingerprint_index(self)
        stored = self.object_sizes()
        intact: set[str] = set()  # objects this run stored or proved intact
        entries: list[FileEntry] = []
        copied = bytes_copied = reused = hashed = healed = 0
        for rel_path, abs_path, info in _lake_files(lake, zones):
            size = int(info.get("size") or 0)
            fingerprint = fingerprint_of(info)
            known = previous.get((rel_path, fingerprint, size)) if fingerprint else None
            staged = None
            if known:
                sha = known
            elif rehash:
                sha = _sha256_of(lake.fs, abs_path)  # a full check re-reads; it stores little
                hashed += 1
            else:
                staged, sha, size = self._ingest(lake.fs, abs_path)  # new or changed: one read
                hashed += 1
            if sha in intact or (sha in stored and stored[sha] == size and (not rehash or self._object_intact(sha))):
                intact.add(sha)
                reused += 1
                if staged is not None:
                    self.fs.rm(staged)
            else:
                damaged = sha in stored
                if staged is not None:
                    self.fs.makedirs(self.object_path(sha).rsplit("/", 1)[0], exist_ok=True)
                    publish(self.fs, staged, self.object_path(sha))
                    bytes_copied += size
                else:
                    bytes_copied += self._store_object(lake.fs, abs_path, sha)
                stored[sha] = size
                intact.add(sha)
                copied += 1
                healed += damaged
                log(
                    f"{'re-stored damaged object for' if damaged else 'stored'} {rel_path} ({size} bytes) as {sha[:12]}"
                )
            entries.append(FileEntry(path=rel_path, size=size, sha256=sha, fingerprint=fingerprint))
        manifest = Manifest(
            snapshot_id=new_snapshot_id(now),
            created_at=(now or datetime.now(UTC)).astimezone(UTC).isoformat(),
            lake_url=lake.url,
            zones=tuple(zones),
            files=tuple(sorted(entries, key=lambda e: e.path)),
        )
        self._write_manifest(manifest)
        return BackupResult(
            snapshot_id=manifest.snapshot_id,
            files=len(entries),
            bytes=manifest.total_bytes,
            objects_copied=copied,
            bytes_copied=bytes_copied,
            objects_reused=reused,
            hashed=hashed,
            objects_healed=healed,
        )

    def verify(
        self,
        snapshot_id: str | None = None,
        deep: bool = True,
        repair_from: Lake | None = None,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> VerifyReport:
        """Check that every object of a snapshot exists with the recorded size (and, when ``deep``,
        that its bytes still hash to the recorded checksum: bit rot, truncation, tampering).

        With ``repair_from`` (a lake), each missing or damaged object is fetched again from the lake
        file that the manifest names, when that file still hashes to the recorded checksum; what
        cannot be repaired that way stays in ``missing``/``corrupted``.
        """
        manifest = self.load_manifest(snapshot_id)
        states: dict[str, str] = {}
        for entry in manifest.files:
            if entry.sha256 not in states:
                states[entry.sha256] = self._object_state(entry, deep)
        repaired: list[str] = []
        if repair_from is not None:
            for entry in manifest.files:
                if states[entry.sha256] in ("missing", "corrupted") and self._repair(entry, repair_from, log):
                    states[entry.sha256] = "repaired"
            repaired = [e.path for e in manifest.files if states[e.sha256] == "repaired"]
        return VerifyReport(
            snapshot_id=manifest.snapshot_id,
            checked=len(manifest.files),
            missing=tuple(e.path for e in manifest.files if states[e.sha256] == "missing"),
            corrupted=tuple(e.path for e in manifest.files if states[e.sha256] == "corrupted"),
            repaired=tuple(repaired),
        )

    def _repair(self, entry: FileEntry, lake: Lake, log: Callable[[str], None]) -> bool:
        """Re-store ``entry``'s object from the lake if the lake file is still the backed-up version."""
        source = lake.path(*PurePosixPath(entry.path).parts).path
        try:
            if not lake.fs.exists(source) or _sha256_of(lake.fs, source) != entry.sha256:
                log(f"cannot repair {object_key(entry.sha256)} from {entry.path}: the lake file is gone or changed")
                return False
            self._store_object(lake.fs, source, entry.sha256)
        except BackupError as error:  # the lake file changed while we copied it
            log(f"cannot repair {object_key(entry.sha256)}: {error}")
            return False
        log(f"repaired {object_key(entry.sha256)} from {entry.path}")
        return True

    def _object_state(self, entry: FileEntry, deep: bool) -> str:
        path = self.object_path(entry.sha256)
        if not self.fs.exists(path):
            return "missing"
        if int(self.fs.size(path) or 0) != entry.size:
            return "corrupted"
        if deep and _sha256_of(self.fs, path) != entry.sha256:
            return "corrupted"
        return "ok"

    def restore(
        self,
        lake: Lake,
        snapshot_id: str | None = None,
        exact: bool = False,
        overwrite_all: bool = False,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> RestoreResult:
        """Write a snapshot's files back into ``lake`` (which may be a different lake than the
        backed-up one): check everything first, then write.

        1. Only files that are missing from the lake or differ from the snapshot are restored
           (``overwrite_all`` rewrites every file). A lake file is "unchanged" when its size and
           sha256 match the manifest; for the lake the snapshot was taken from, an unchanged
           size+mtime/ETag fingerprint is trusted without reading the file, as backups do.
        2. Every object needed is copied into a staging file beside its destination and hashed.
           If any object is missing or corrupt, every staging file is removed and the restore
           fails naming all of them — no live file has been touched.
        3. Only then are the staged files moved into place, and (with ``exact``) files in the
           snapshot's zones that the snapshot does not contain are removed.
        """
        manifest = self.load_manifest(snapshot_id)
        _invalidate(lake.fs)
        current = {rel: info for rel, _abs, info in _lake_files(lake, manifest.zones)}
        trust_fingerprints = _same_location(lake.url, manifest.lake_url)
        wanted = [
            entry
            for entry in manifest.files
            if overwrite_all or not _lake_file_matches(lake, entry, current.get(entry.path), trust_fingerprints)
        ]
        available = self.object_sizes() if wanted else {}
        absent = sorted({e.path for e in wanted if e.sha256 not in available})
        if absent:
            raise IntegrityError(
                f"cannot restore snapshot {manifest.snapshot_id}: {len(absent)} backup objects are missing from "
                f"{self.url} (e.g. {', '.join(absent[:3])}); nothing in the lake was changed. Try `lepton-lake "
                "verify --repair` while the lake still has those files, or restore an older snapshot"
            )
        staged: list[tuple[str, str]] = []  # (staging file, final path)
        problems: list[str] = []
        total = 0
        try:
            for entry in wanted:
                target = lake.path(*PurePosixPath(entry.path).parts).path
                try:
                    staging, size = self._stage_file(entry, lake.fs, target)
                except IntegrityError as error:
                    problems.append(str(error))
                    continue
                staged.append((staging, target))
                total += size
            if problems:
                raise IntegrityError(
                    f"cannot restore snapshot {manifest.snapshot_id}: {len(problems)} backup objects are corrupt; "
                    f"nothing in the lake was changed. {problems[0]}"
                    + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                )
            for staging, target in staged:
                publish(lake.fs, staging, target)
        finally:
            for staging, _target in staged:
                if lake.fs.exists(staging):
                    lake.fs.rm(staging)
        for entry in wanted:
            log(f"restored {entry.path}")
        removed: list[str] = []
        if exact:
            keep = {e.path for e in manifest.files}
            for rel_path, abs_path, _info in list(_lake_files(lake, manifest.zones)):
                if rel_path not in keep:
                    lake.fs.rm(abs_path)
                    removed.append(rel_path)
                    log(f"removed {rel_path} (not in snapshot {manifest.snapshot_id})")
        _invalidate(lake.fs)
        return RestoreResult(
            snapshot_id=manifest.snapshot_id,
            restored=len(wanted),
            bytes=total,
            removed=tuple(removed),
            unchanged=len(manifest.files) - len(wanted),
            restored_paths=tuple(e.path for e in wanted),
        )

    def _stage_file(self, entry: FileEntry, target_fs, target: str) -> tuple[str, int]:
        """Copy ``entry``'s object next to ``target`` under a hidden temp name, checking its sha256."""
        source = self.object_path(entry.sha256)
        parent = target.rsplit("/", 1)[0]
        target_fs.makedirs(parent, exist_ok=True)
        staged = staging_path(target)
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(source, "rb") as src, target_fs.open(staged, "wb") as dst:
                while chunk := src.read(CHUNK_BYTES):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise IntegrityError(
                f"cannot restore {entry.path}: object {object_key(entry.sha256)} is missing from {self.url}"
            ) from None
        if digest.hexdigest() != entry.sha256 or size != entry.size:
            target_fs.rm(staged)
            raise IntegrityError(
                f"cannot restore {entry.path}: backup object {object_key(entry.sha256)} is corrupt "
                f"(sha256 {digest.hexdigest()[:12]}…, {size} bytes; manifest says {entry.sha256[:12]}…, "
                f"{entry.size} bytes); repair it with `lepton-lake verify --repair` or restore an older snapshot"
            )
        return staged, size

    def verify_lake(self, lake: Lake, snapshot_id: str | None = None) -> VerifyReport:
        """Re-read a lake's files and compare them with a snapshot's manifest: the proof, after a
        restore, that what landed in the lake is byte-for-byte what was backed up."""
        manifest = self.load_manifest(snapshot_id)
        _invalidate(lake.fs)
        missing: list[str] = []
        corrupted: list[str] = []
        for entry in manifest.files:
            path = lake.path(*PurePosixPath(entry.path).parts).path
            if not lake.fs.exists(path):
                missing.append(entry.path)
            elif _sha256_of(lake.fs, path) != entry.sha256:
                corrupted.append(entry.path)
        return VerifyReport(manifest.snapshot_id, len(manifest.files), tuple(missing), tuple(corrupted))

    def prune(self, keep: int, log: Callable[[str], None] = lambda _msg: None) -> PruneResult:
        """Keep the newest ``keep`` snapshots; delete older manifests, then every object that no
        remaining manifest references. Run it only after the newest snapshot verified."""
        if keep < 1:
            raise BackupError(f"retention keep={keep} would delete every snapshot; it must be at least 1")
        ids = self.snapshot_ids()
        doomed, kept = ids[:-keep], ids[-keep:]
        for snapshot_id in doomed:
            self.fs.rm(self._abs(f"snapshots/{snapshot_id}.json"))
            log(f"deleted snapshot {snapshot_id}")
        referenced = {f.sha256 for s in kept for f in self.load_manifest(s).files}
        deleted_objects = 0
        for sha in sorted(self.object_shas() - referenced):
            self.fs.rm(self.object_path(sha))
            deleted_objects += 1
        _invalidate(self.fs)
        return PruneResult(kept=tuple(kept), deleted_snapshots=tuple(doomed), deleted_objects=deleted_objects)


# -- helpers ---------------------------------------------------------------------------------------
def _lake_files(lake: Lake, zones: Iterable[str]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(path relative to the lake root, absolute fs path, fs info) for every published file."""
    root = lake.root.path.rstrip("/")
    _invalidate(lake.fs)
    for zone in zones:
        zone_dir = lake.path(zone).path
        if not lake.fs.exists(zone_dir):
            continue
        for abs_path, info in sorted(lake.fs.find(zone_dir, detail=True).items()):
            if info.get("type") == "directory" or is_staging_name(PurePosixPath(abs_path).name):
                continue
            rel = abs_path.rstrip("/")[len(root) + 1 :] if abs_path.startswith(root + "/") else abs_path
            yield rel, abs_path, info


def _fingerprint_index(repo: BackupRepository) -> dict[tuple[str, str, int], str]:
    latest = repo.latest_snapshot_id()
    if latest is None:
        return {}
    return {(f.path, f.fingerprint, f.size): f.sha256 for f in repo.load_manifest(latest).files if f.fingerprint}


def _same_location(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _lake_file_matches(lake: Lake, entry: FileEntry, info: dict[str, Any] | None, trust_fingerprints: bool) -> bool:
    """Whether the live lake file already is the snapshot's version (so a restore can skip it)."""
    if info is None or int(info.get("size") or 0) != entry.size:
        return False
    if trust_fingerprints and entry.fingerprint and fingerprint_of(info) == entry.fingerprint:
        return True
    return _sha256_of(lake.fs, lake.path(*PurePosixPath(entry.path).parts).path) == entry.sha256


def _sha256_of(fs, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _invalidate(fs) -> None:
    # s3fs caches listings; a backup must see objects written moments ago (by us or another run).
    fs.invalidate_cache()


def _check_not_nested(lake: Lake, repo: BackupRepository) -> None:
    lake_root, backup_root = str(lake.root).rstrip("/") + "/", str(repo.root).rstrip("/") + "/"
    if backup_root.startswith(lake_root) or lake_root.startswith(backup_root):
        raise BackupError(
            f"backup location {repo.url} overlaps the lake {lake.url}: a backup inside the data it "
            "protects is lost with it; use another folder, bucket or prefix"
        )
