"""Fixtures for connector tests: a local lake, an S3 lake served by moto's threaded server over HTTP,
and a JSON API served by its own process (``api_server.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
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


# -- a real HTTP API in its own process ----------------------------------------------------------------
API_SECRET = "Bearer s3cret-token-4242"  # what /secure expects in X-Auth


@dataclass
class ApiServer:
    """Handle on ``api_server.py`` running as a subprocess: its base URL and its request log."""

    base: str

    def hits(self, path: str) -> list[dict]:
        return requests.get(f"{self.base}/_log", params={"path": path}, timeout=10).json()


@pytest.fixture(scope="module")
def api():
    env = {**os.environ, "API_EXPECTED_AUTH": API_SECRET}
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("api_server.py"))], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), f"api_server.py did not start: {line!r}"
        yield ApiServer(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        process.terminate()
        process.wait(timeout=10)
