"""Fixtures for the platform tests: a small lake with files in every protected zone, and backup
locations on a local folder and on S3 (moto's threaded server over HTTP, via the root conftest)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pandas as pd
import pytest

from lepton_pipelines.lake.backup import BackupRepository
from lepton_pipelines.lake.store import Lake, write_parquet_atomic

LAKE_FILES = {
    "governed/transactions/date=2024-01-01": pd.DataFrame({"id": [1, 2, 3], "amount": [9.5, 3.25, 7.0]}),
    "governed/transactions/date=2024-01-02": pd.DataFrame({"id": [4, 5], "amount": [1.0, 2.0]}),
    "quarantine/transactions/date=2024-01-01": pd.DataFrame({"id": [6], "reason": ["amount is negative"]}),
}
RAW_BYTES = {
    "_quality/transactions/results.json": b'{"success": true, "checks": 4}',
    "models/churn/versions/3/model.joblib": bytes(range(256)) * 64,
}


def populate(lake: Lake) -> None:
    for folder, frame in LAKE_FILES.items():
        write_parquet_atomic(lake.path(*folder.split("/")), frame)
    for rel, data in RAW_BYTES.items():
        target = lake.path(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with lake.fs.open(target.path, "wb") as handle:
            handle.write(data)
    # Neither of these is protected state: landing can be re-pulled, a temp file is a half-write.
    write_parquet_atomic(lake.path("raw", "transactions", "date=2024-01-01"), pd.DataFrame({"x": [1]}))
    with lake.fs.open(lake.path("governed", "transactions", ".data.parquet.abc.tmp").path, "wb") as handle:
        handle.write(b"partial")


def checksums(lake: Lake, zones=("governed", "quarantine", "_quality", "models")) -> dict[str, str]:
    """sha256 of every file under ``zones``, keyed by lake-relative path."""
    lake.fs.invalidate_cache()
    root = lake.root.path.rstrip("/")
    result = {}
    for zone in zones:
        base = lake.path(zone).path
        if not lake.fs.exists(base):
            continue
        for path in lake.fs.find(base):
            with lake.fs.open(path, "rb") as handle:
                result[path[len(root) + 1 :]] = hashlib.sha256(handle.read()).hexdigest()
    return result


@pytest.fixture
def local_lake(tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    populate(lake)
    return lake


@pytest.fixture
def local_repo(tmp_path) -> BackupRepository:
    return BackupRepository(str(tmp_path / "backups"))


@pytest.fixture
def s3_backup_url(moto_s3_endpoint, monkeypatch) -> str:
    import boto3

    bucket = f"backup-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    monkeypatch.setenv("LEPTON_S3_ENDPOINT_URL", moto_s3_endpoint)
    return f"s3://{bucket}/lepton-backups"


def wipe_zones(lake: Lake, zones=("governed", "quarantine", "_quality", "models")) -> None:
    for zone in zones:
        path = lake.path(zone).path
        if lake.fs.exists(path):
            lake.fs.rm(path, recursive=True)
    lake.fs.invalidate_cache()


def local_file(lake: Lake, rel: str) -> Path:
    return Path(lake.path(*rel.split("/")).path)
