"""Fixtures for connector tests: a local lake, and an S3 lake served by moto's threaded server over HTTP."""
from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lepton_pipelines.lake.store import Lake


@pytest.fixture
def local_lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_lake(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Lake:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return Lake(f"s3://{bucket}/prefix", s3_endpoint_url=moto_endpoint)


def land(lake: Lake, relative: str, data: bytes) -> str:
    """Write a landed file through the lake's filesystem; returns its path relative to the lake root."""
    target = lake.path(*relative.split("/"))
    lake.fs.makedirs(target.parent.path, exist_ok=True)
    with lake.fs.open(target.path, "wb") as handle:
        handle.write(data)
    return relative
