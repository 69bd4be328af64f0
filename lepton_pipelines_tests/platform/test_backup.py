"""Lake backup and restore on local folders and on S3 (moto over HTTP): round trips are byte-identical,
backups are incremental, retention keeps N snapshots, and corruption is detected."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lepton_pipelines.lake.backup import (
    BackupError,
    BackupRepository,
    IntegrityError,
    SnapshotNotFound,
    object_key,
)
from lepton_pipelines.lake.backup_cli import main as cli
from lepton_pipelines.lake.store import Lake, write_parquet_atomic
from lepton_pipelines_tests.platform.conftest import LAKE_FILES, RAW_BYTES, checksums, local_file, populate, wipe_zones

pytestmark = pytest.mark.timeout(120)
PROTECTED_FILES = {f"{folder}/data.parquet" for folder in LAKE_FILES} | set(RAW_BYTES)


def test_local_backup_delete_restore_gives_identical_checksums(local_lake, local_repo):
    before = checksums(local_lake)
    result = local_repo.backup(local_lake)
    manifest = local_repo.load_manifest(result.snapshot_id)

    assert {f.path for f in manifest.files} == PROTECTED_FILES  # no raw zone, no temp file
    assert {f.path: f.sha256 for f in manifest.files} == {k: v for k, v in before.items() if k in PROTECTED_FILES}
    assert result.objects_copied == len(PROTECTED_FILES)

    wipe_zones(local_lake)
    assert checksums(local_lake) == {}
    restored = local_repo.restore(local_lake, result.snapshot_id)
    assert restored.restored == len(PROTECTED_FILES)
    assert checksums(local_lake) == {k: v for k, v in before.items() if k in PROTECTED_FILES}
    assert local_repo.verify_lake(local_lake, result.snapshot_id).ok
    pd.testing.assert_frame_equal(
        local_lake.read_table("governed", "transactions", "2024-01-02"),
        LAKE_FILES["governed/transactions/date=2024-01-02"],
    )


def test_s3_lake_to_s3_backup_round_trip(s3_lake, s3_backup_url):
    populate(s3_lake)
    repo = BackupRepository(s3_backup_url)
    before = {k: v for k, v in checksums(s3_lake).items() if k in PROTECTED_FILES}
    assert set(before) == PROTECTED_FILES

    result = repo.backup(s3_lake)
    assert repo.verify(result.snapshot_id).ok
    assert repo.fs.exists(f"{repo.root.path}/{object_key(before['models/churn/versions/3/model.joblib'])}")

    wipe_zones(s3_lake)
    assert checksums(s3_lake) == {}
    repo.restore(s3_lake, "latest")
    assert checksums(s3_lake) == before


def test_local_lake_restores_from_s3_backup_into_another_lake(local_lake, s3_backup_url, tmp_path):
    repo = BackupRepository(s3_backup_url)
    snapshot = repo.backup(local_lake).snapshot_id
    elsewhere = Lake(str(tmp_path / "recovered"))
    repo.restore(elsewhere, snapshot)
    assert checksums(elsewhere) == {k: v for k, v in checksums(local_lake).items() if k in PROTECTED_FILES}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_incremental_backup_copies_only_changed_objects(where, local_lake, tmp_path, s3_backup_url):
    repo = BackupRepository(str(tmp_path / "backups") if where == "local" else s3_backup_url)
    first = repo.backup(local_lake)
    assert (first.objects_copied, first.objects_reused) == (len(PROTECTED_FILES), 0)

    unchanged = repo.backup(local_lake)
    assert unchanged.objects_copied == 0
    assert unchanged.bytes_copied == 0
    assert unchanged.objects_reused == len(PROTECTED_FILES)
    assert unchanged.hashed == 0  # fingerprints matched: unchanged files were not even read

    changed = pd.DataFrame({"id": [4, 5, 99], "amount": [1.0, 2.0, 3.0]})
    write_parquet_atomic(local_lake.path("governed", "transactions", "date=2024-01-02"), changed)
    third = repo.backup(local_lake)
    assert third.objects_copied == 1
    assert third.objects_reused == len(PROTECTED_FILES) - 1
    assert len(repo.object_shas()) == len(PROTECTED_FILES) + 1

    # Both points in time stay restorable.
    repo.restore(local_lake, first.snapshot_id)
    assert local_lake.read_table("governed", "transactions", "2024-01-02")["id"].tolist() == [4, 5]
    repo.restore(local_lake, third.snapshot_id)
    assert local_lake.read_table("governed", "transactions", "2024-01-02")["id"].tolist() == [4, 5, 99]


def test_rehash_detects_change_hidden_from_fingerprints(local_lake, local_repo):
    local_repo.backup(local_lake)
    path = local_file(local_lake, "_quality/transactions/results.json")
    stat = path.stat()
    path.write_bytes(b'{"success": fals, "checks": 4}'[: stat.st_size].ljust(stat.st_size, b" "))
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: looks unchanged
    assert local_repo.backup(local_lake).objects_copied == 0
    assert local_repo.backup(local_lake, rehash=True).objects_copied == 1


def test_retention_keeps_newest_n_and_collects_unreferenced_objects(local_lake, local_repo):
    snapshots = []
    for version in range(4):
        write_parquet_atomic(
            local_lake.path("governed", "transactions", "date=2024-01-02"),
            pd.DataFrame({"id": [version], "amount": [float(version)]}),
        )
        snapshots.append(local_repo.backup(local_lake).snapshot_id)
    assert local_repo.snapshot_ids() == snapshots
    assert len(local_repo.object_shas()) == len(PROTECTED_FILES) + 3

    pruned = local_repo.prune(keep=2)
    assert local_repo.snapshot_ids() == snapshots[-2:]
    assert pruned.deleted_snapshots == tuple(snapshots[:2])
    assert pruned.deleted_objects == 2  # the two superseded versions of the changed partition
    assert len(local_repo.object_shas()) == len(PROTECTED_FILES) + 1
    for kept in snapshots[-2:]:
        assert local_repo.verify(kept).ok
    with pytest.raises(SnapshotNotFound, match=snapshots[0]):
        local_repo.restore(local_lake, snapshots[0])
    with pytest.raises(BackupError, match="at least 1"):
        local_repo.prune(keep=0)


def _flip_byte(path: str, offset: int = 100) -> None:
    data = bytearray(open(path, "rb").read())
    data[min(offset, len(data) - 1)] ^= 0xFF
    open(path, "wb").write(bytes(data))


def test_verify_detects_corrupted_and_missing_objects_and_restore_refuses_them(local_lake, local_repo):
    snapshot = local_repo.backup(local_lake).snapshot_id
    manifest = local_repo.load_manifest(snapshot)
    model = next(f for f in manifest.files if f.path.startswith("models/"))
    quality = next(f for f in manifest.files if f.path.startswith("_quality/"))

    # Flip one byte of the stored model (same size: only the checksum can tell).
    _flip_byte(local_repo.object_path(model.sha256))
    local_repo.fs.rm(local_repo.object_path(quality.sha256))

    report = local_repo.verify(snapshot)
    assert not report.ok
    assert report.corrupted == (model.path,)
    assert report.missing == (quality.path,)
    assert local_repo.verify(snapshot, deep=False).corrupted == ()  # sizes alone cannot see a flipped byte

    wipe_zones(local_lake)
    with pytest.raises(IntegrityError, match="missing") as missing:
        local_repo.restore(local_lake, snapshot)
    assert quality.path in str(missing.value) and "nothing in the lake was changed" in str(missing.value)
    assert checksums(local_lake) == {}  # checked first: not one file was written


def test_restore_checks_every_object_before_writing_any_file(local_lake, local_repo):
    snapshot = local_repo.backup(local_lake).snapshot_id
    manifest = local_repo.load_manifest(snapshot)
    last = manifest.files[-1]  # restored last: every other file would be written before it is met
    _flip_byte(local_repo.object_path(last.sha256), offset=20)
    wipe_zones(local_lake)

    with pytest.raises(IntegrityError, match="corrupt") as failure:
        local_repo.restore(local_lake, snapshot)

    # Nothing was written, and no staging file was left behind anywhere in the lake.
    assert last.path in str(failure.value) and "nothing in the lake was changed" in str(failure.value)
    assert checksums(local_lake) == {}
    leftovers = [p for p in local_lake.fs.find(local_lake.root.path) if p.endswith(".tmp")]
    assert leftovers == [p for p in leftovers if "raw/" in p or ".data.parquet.abc.tmp" in p]


def test_restore_writes_only_missing_or_changed_files_unless_told_otherwise(local_lake, local_repo):
    snapshot = local_repo.backup(local_lake).snapshot_id
    before = {k: v for k, v in checksums(local_lake).items() if k in PROTECTED_FILES}
    deleted = "governed/transactions/date=2024-01-01/data.parquet"
    local_file(local_lake, deleted).unlink()
    changed = "_quality/transactions/results.json"
    local_file(local_lake, changed).write_bytes(b'{"success": false, "checks": 9}')
    untouched = local_file(local_lake, "models/churn/versions/3/model.joblib")
    untouched_inode = untouched.stat().st_ino

    result = local_repo.restore(local_lake, snapshot)

    assert sorted(result.restored_paths) == sorted([deleted, changed])
    assert (result.restored, result.unchanged) == (2, len(PROTECTED_FILES) - 2)
    assert {k: v for k, v in checksums(local_lake).items() if k in PROTECTED_FILES} == before
    assert untouched.stat().st_ino == untouched_inode  # left alone, not rewritten

    everything = local_repo.restore(local_lake, snapshot, overwrite_all=True)
    assert (everything.restored, everything.unchanged) == (len(PROTECTED_FILES), 0)
    assert untouched.stat().st_ino != untouched_inode

    # Into another, empty lake nothing can be trusted by fingerprint: every file is written.
    assert local_repo.restore(Lake(local_lake.url + "-copy"), snapshot).restored == len(PROTECTED_FILES)


def test_backup_heals_damaged_objects_and_new_snapshots_verify(local_lake, local_repo):
    first = local_repo.backup(local_lake)
    manifest = local_repo.load_manifest(first.snapshot_id)
    model = next(f for f in manifest.files if f.path.startswith("models/"))
    quality = next(f for f in manifest.files if f.path.startswith("_quality/"))
    _flip_byte(local_repo.object_path(model.sha256))  # same size: only a re-hash can see it
    with open(local_repo.object_path(quality.sha256), "r+b") as handle:
        handle.truncate(3)  # wrong size: every backup sees it from the listing

    plain = local_repo.backup(local_lake)
    assert (plain.objects_copied, plain.objects_healed) == (1, 1)  # the truncated one
    assert local_repo.verify(plain.snapshot_id).corrupted == (model.path,)

    rehashed = local_repo.backup(local_lake, rehash=True)
    assert (rehashed.objects_copied, rehashed.objects_healed) == (1, 1)
    assert rehashed.objects_reused == len(PROTECTED_FILES) - 1
    for snapshot in (first.snapshot_id, plain.snapshot_id, rehashed.snapshot_id):
        assert local_repo.verify(snapshot).ok  # objects are shared: healing one heals every snapshot
    assert local_repo.backup(local_lake, rehash=True).objects_copied == 0


def test_verify_repair_refetches_from_the_lake_only_when_the_lake_still_matches(local_lake, local_repo):
    snapshot = local_repo.backup(local_lake).snapshot_id
    manifest = local_repo.load_manifest(snapshot)
    model = next(f for f in manifest.files if f.path.startswith("models/"))
    quality = next(f for f in manifest.files if f.path.startswith("_quality/"))
    governed = next(f for f in manifest.files if f.path.startswith("governed/"))
    _flip_byte(local_repo.object_path(model.sha256))
    local_repo.fs.rm(local_repo.object_path(quality.sha256))
    _flip_byte(local_repo.object_path(governed.sha256), offset=10)
    local_file(local_lake, governed.path).write_bytes(b"a newer partition the snapshot never saw")

    report = local_repo.verify(snapshot, repair_from=local_lake)

    assert sorted(report.repaired) == sorted([model.path, quality.path])
    assert report.corrupted == (governed.path,)  # its lake file changed since: cannot be the backed-up bytes
    assert not report.ok
    again = local_repo.verify(snapshot)
    assert again.corrupted == (governed.path,) and again.missing == ()


def test_exact_restore_removes_files_created_after_the_snapshot(local_lake, local_repo):
    snapshot = local_repo.backup(local_lake).snapshot_id
    write_parquet_atomic(local_lake.path("governed", "transactions", "date=2024-01-03"), pd.DataFrame({"id": [7]}))

    kept = local_repo.restore(local_lake, snapshot)
    assert kept.removed == ()
    assert local_file(local_lake, "governed/transactions/date=2024-01-03/data.parquet").exists()

    exact = local_repo.restore(local_lake, snapshot, exact=True)
    assert exact.removed == ("governed/transactions/date=2024-01-03/data.parquet",)
    # An in-progress write (temp file) is not lake state: exact restore leaves it to its writer.
    assert {p for p in checksums(local_lake) if not p.endswith(".tmp")} == PROTECTED_FILES
    assert local_file(local_lake, "raw/transactions/date=2024-01-01/data.parquet").exists()  # other zones untouched


def test_configuration_errors_are_explained(local_lake, monkeypatch, tmp_path):
    monkeypatch.delenv("LEPTON_BACKUP_URL", raising=False)
    with pytest.raises(BackupError, match="LEPTON_BACKUP_URL"):
        BackupRepository()
    with pytest.raises(BackupError, match="overlaps the lake"):
        BackupRepository(local_lake.url + "/backups").backup(local_lake)
    empty = BackupRepository(str(tmp_path / "empty"))
    with pytest.raises(SnapshotNotFound, match="holds no snapshots"):
        empty.verify()
    (tmp_path / "empty" / "snapshots").mkdir(parents=True)
    (tmp_path / "empty" / "snapshots" / "20240101T000000000000Z-abcdef.json").write_text('{"format": "other"}')
    with pytest.raises(BackupError, match="not a valid Lepton backup manifest"):
        empty.load_manifest("latest")


def test_cli_backup_list_verify_restore(local_lake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEPTON_LAKE_URL", local_lake.url)
    monkeypatch.setenv("LEPTON_BACKUP_URL", str(tmp_path / "backups"))
    before = checksums(local_lake)

    assert cli(["--json", "backup", "--keep", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["verify"]["ok"] and first["backup"]["objects_copied"] == len(PROTECTED_FILES)
    assert cli(["--json", "backup", "--keep", "1"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["backup"]["objects_copied"] == 0
    assert second["prune"]["deleted_snapshots"] == [first["backup"]["snapshot_id"]]

    assert cli(["--json", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["snapshot_id"] for s in listed] == [second["backup"]["snapshot_id"]]

    wipe_zones(local_lake)
    assert cli(["--json", "restore", "latest"]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert restored["verify"]["ok"] and restored["restore"]["restored"] == len(PROTECTED_FILES)
    assert checksums(local_lake) == {k: v for k, v in before.items() if k in PROTECTED_FILES}

    repo = BackupRepository(str(tmp_path / "backups"))
    victim = repo.load_manifest().files[0]
    with open(repo.object_path(victim.sha256), "r+b") as handle:
        handle.write(b"X")
    assert cli(["verify"]) == 1
    assert "fail their checksum" in capsys.readouterr().out
    assert cli(["--json", "verify", "--repair"]) == 0
    repaired = json.loads(capsys.readouterr().out)
    assert repaired["ok"] and repaired["repaired"] == [victim.path]
    assert cli(["verify"]) == 0
    capsys.readouterr()

    # The same damage, and a plain `backup` heals it: its snapshot is not born failing verification.
    with open(repo.object_path(victim.sha256), "r+b") as handle:
        handle.write(b"X")
    assert cli(["--json", "backup"]) == 0
    healed = json.loads(capsys.readouterr().out)
    assert healed["verify"]["ok"] and healed["verify"]["repaired"] == [victim.path]

    assert cli(["--json", "restore", "latest"]) == 0
    nothing_to_do = json.loads(capsys.readouterr().out)
    assert nothing_to_do["restore"]["restored"] == 0 and nothing_to_do["restore"]["unchanged"] == len(PROTECTED_FILES)
    assert cli(["--json", "restore", "latest", "--all"]) == 0
    assert json.loads(capsys.readouterr().out)["restore"]["restored"] == len(PROTECTED_FILES)
    assert cli(["restore", "20000101T000000000000Z-000000"]) == 2
    assert "not found" in capsys.readouterr().err
