"""The one atomic write and the one local-vs-remote rule, on local disk and on S3 (moto over HTTP)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from fsspec.implementations.local import LocalFileSystem
from upath import UPath

from lepton_pipelines.lake.atomic import is_local, is_staging_name, staging_path, write_atomic
from lepton_pipelines.lake.store import Lake, open_location


def test_is_local_answers_the_same_for_urls_paths_and_filesystems(tmp_path, s3_lake):
    assert (
        is_local(str(tmp_path)) and is_local(tmp_path) and is_local(f"file://{tmp_path}") and is_local("relative/lake")
    )
    assert is_local(UPath(tmp_path)) and is_local(LocalFileSystem())
    assert not is_local("s3://bucket/prefix")
    assert not is_local(s3_lake.root) and not is_local(s3_lake.fs) and not s3_lake.is_local
    assert Lake(str(tmp_path)).is_local


def test_locations_open_file_urls_as_absolute_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_location("file://" + str(tmp_path / "a") + "/").path == str(tmp_path / "a")
    assert open_location("rel").path == str(tmp_path / "rel")


def test_staging_names_are_hidden_beside_the_target():
    staged = staging_path("/lake/clean/x/date=2026-01-01/data.parquet")
    folder, name = staged.rsplit("/", 1)
    assert folder == "/lake/clean/x/date=2026-01-01" and is_staging_name(name) and name.startswith(".data.parquet.")
    assert not is_staging_name("data.parquet")


@pytest.mark.parametrize("lake_fixture", ["tmp_lake", "s3_lake"])
def test_bytes_and_streams_are_published_whole(lake_fixture, request):
    lake: Lake = request.getfixturevalue(lake_fixture)
    target = lake.path("landing", "x", "date=2026-01-01", "batch.jsonl")
    assert write_atomic(target, b'{"a": 1}\n') == str(target)
    assert target.read_bytes() == b'{"a": 1}\n'
    write_atomic(target, lambda handle: handle.write(b'{"a": 2}\n'))
    assert target.read_bytes() == b'{"a": 2}\n'
    assert [p.name for p in target.parent.iterdir()] == ["batch.jsonl"]


@pytest.mark.parametrize("lake_fixture", ["tmp_lake", "s3_lake"])
def test_a_failed_stream_publishes_nothing_and_leaves_no_staging_file(lake_fixture, request):
    """A writer that fails halfway must not leave a truncated object under the final name (on S3 a
    streaming upload would be completed on close) nor a staging file beside it."""
    lake: Lake = request.getfixturevalue(lake_fixture)
    target = lake.path("models", "m", "registry.json")
    write_atomic(target, b"previous")

    def half_then_fail(handle):
        handle.write(b"half of the new")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in target.parent.iterdir()] == ["registry.json"]


def test_fsync_flushes_the_file_and_its_folder_before_returning(tmp_path, monkeypatch):
    """The MQTT committer acknowledges right after the write: the file and the rename must be on disk."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    target = UPath(tmp_path / "landing" / "batch.jsonl")
    write_atomic(target, b"line\n", fsync=True)
    assert len(synced) == 2 and is_staging_name(os.path.basename(synced[0])) and synced[1] == str(tmp_path / "landing")
    synced.clear()
    write_atomic(target, b"line\n")
    assert synced == []


def test_read_partitions_reads_the_columns_each_file_has_and_skips_missing_days(tmp_lake):
    tmp_lake.write_table(
        "clean", "dev", "2026-01-01", pd.DataFrame({"device_id": ["a", "b"], "seq": [1, 2], "extra": [0, 0]})
    )
    tmp_lake.write_table("clean", "dev", "2026-01-02", pd.DataFrame({"device_id": ["c"]}))
    frame = tmp_lake.read_partitions("clean", "dev", ["2026-01-01", "2026-01-02", "2026-01-03"], ["device_id", "seq"])
    assert frame["device_id"].tolist() == ["a", "b", "c"] and list(frame.columns) == ["device_id", "seq"]
    assert frame["seq"].tolist()[:2] == [1, 2] and pd.isna(frame["seq"].iloc[2])
    assert len(tmp_lake.read_partitions("clean", "dev")) == 3
    empty = tmp_lake.read_partitions("clean", "nothing", None, ["device_id"])
    assert empty.empty and list(empty.columns) == ["device_id"]
