"""Fixtures shared by every test folder: a temporary lake, and S3 over HTTP via moto's threaded server
(the way s3fs tests itself — real S3 protocol, no client patching)."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from lepton_pipelines_tests.kinds import KINDS, ServiceGuard, kind_of

_GUARD: ServiceGuard | None = None


def pytest_configure(config):
    global _GUARD
    _GUARD = _GUARD or ServiceGuard()


def pytest_collection_modifyitems(config, items):
    """Every test gets exactly one kind (``kinds.py``): its own marker if it carries one, else its module's."""
    here = os.path.dirname(__file__)
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KINDS):
            item.add_marker(getattr(pytest.mark, kind_of(os.path.relpath(str(item.path), here).replace(os.sep, "/"))))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    guarded = item.get_closest_marker("unit") or item.get_closest_marker("integration")
    _GUARD.active = item.nodeid if guarded else None
    try:
        return (yield)
    finally:
        _GUARD.active = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tmp_lake(tmp_path, monkeypatch):
    from lepton_pipelines.lake.store import Lake

    root = tmp_path / "lake"
    monkeypatch.setenv("LEPTON_LAKE_URL", str(root))
    return Lake(str(root))


@pytest.fixture(scope="session")
def moto_s3_endpoint():
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_lake(moto_s3_endpoint, monkeypatch):
    """A fresh bucket per test; the lake URL and endpoint go through the contract's env variables."""
    import boto3
    import s3fs

    from lepton_pipelines.lake.store import Lake

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("LEPTON_LAKE_URL", f"s3://{bucket}/lepton")
    monkeypatch.setenv("LEPTON_S3_ENDPOINT_URL", moto_s3_endpoint)
    return Lake(f"s3://{bucket}/lepton", moto_s3_endpoint)
