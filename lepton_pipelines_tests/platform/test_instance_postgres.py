"""The production instance template (deployments/platform/dagster.yaml) on the real Postgres server:
runs and events are stored there and read back by a second, independent instance; step logs land in
the S3 bucket (moto over HTTP) through the S3ComputeLogManager."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import boto3
import psycopg2
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    EventRecordsFilter,
    asset,
    materialize,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deployments" / "platform" / "dagster.yaml"

pytestmark = pytest.mark.timeout(180)


def _admin_connection():
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def postgres_database():
    """A uniquely named database for this test session, dropped afterwards."""
    name = f"lepton_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_connection()  # not `with admin:` — psycopg2 would open a transaction block
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    yield name
    admin = _admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def production_instance_env(postgres_database, moto_s3_endpoint, monkeypatch, tmp_path):
    """DAGSTER_HOME holding the unmodified production template, configured only through env vars."""
    bucket = f"compute-logs-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(TEMPLATE, home / "dagster.yaml")
    for key, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_HOSTNAME": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": "5432",
        "DAGSTER_POSTGRES_DB": postgres_database,
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_PASSWORD": "",  # trust auth on this machine; a real secret in production
        "LEPTON_COMPUTE_LOG_BUCKET": bucket,
        "LEPTON_COMPUTE_LOG_PREFIX": "dagster/compute-logs",
        "LEPTON_S3_ENDPOINT_URL": moto_s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    return {"home": home, "bucket": bucket, "endpoint": moto_s3_endpoint}


@asset(group_name="platform_smoke")
def greeting() -> str:
    print("hello from a step running on the production instance")
    return "hello"


@asset(group_name="platform_smoke")
def shout(greeting: str) -> str:
    return greeting.upper()


def test_production_template_stores_runs_and_events_in_postgres(production_instance_env, postgres_database):
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        limits = {
            limit["key"]: limit for limit in instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
        }
        assert limits["lepton/mqtt-client"] == {
            "key": "lepton/mqtt-client",
            "limit": 1,
            "value": {"applyLimitPerUniqueValue": True},
        }
        assert limits["lepton/image-build"]["limit"] == 2
        assert instance.run_monitoring_enabled
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2

        result = materialize([greeting, shout], instance=instance, tags={"lepton/test": "postgres"})
        assert result.success
        run_id = result.run_id

    # A second instance (a new process would see the same): everything comes back from Postgres.
    with DagsterInstance.get() as reader:
        run = reader.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags["lepton/test"] == "postgres"
        materialization = reader.get_latest_materialization_event(AssetKey("shout"))
        assert materialization is not None and materialization.run_id == run_id
        records = reader.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION), limit=10
        )
        assert {r.asset_key for r in records} >= {AssetKey("greeting"), AssetKey("shout")}
        step_events = {e.step_key for e in reader.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)}
        assert step_events == {"greeting", "shout"}

    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=postgres_database) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cursor.fetchone() == ("SUCCESS",)
            cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
            assert cursor.fetchone()[0] > 5
    connection.close()

    # Step stdout was uploaded to the lake's bucket under the configured prefix.
    s3 = boto3.client("s3", endpoint_url=production_instance_env["endpoint"], region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=production_instance_env["bucket"]).get("Contents", [])]
    assert keys and all(k.startswith("dagster/compute-logs/") for k in keys)
    out_keys = [k for k in keys if k.endswith(".out")]
    bodies = [s3.get_object(Bucket=production_instance_env["bucket"], Key=k)["Body"].read() for k in out_keys]
    assert any(b"hello from a step running on the production instance" in body for body in bodies)
