"""The platform's Dagster definitions executed for real: the backup and restore jobs on local folders,
retry classification, runtime-limit tags, and the run-failure alert posted to an HTTP server."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
    DagsterEventType,
    DagsterInstance,
    build_sensor_context,
    job,
    op,
)

from lepton_pipelines.lake.backup import BackupError, BackupRepository
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.platform.alerts import post_alert
from lepton_pipelines.platform.backup_jobs import BACKUP_CONCURRENCY_TAG, LakeBackupResource, lake_backup, lake_restore
from lepton_pipelines.platform.definitions import defs
from lepton_pipelines.platform.retries import is_transient_error, max_runtime_tags
from lepton_pipelines.platform.sensors import lepton_run_failure_alert
from lepton_pipelines.resources import bind_resources
from lepton_pipelines_tests.platform.conftest import checksums, wipe_zones

pytestmark = pytest.mark.timeout(180)


def test_definitions_expose_jobs_schedule_and_sensor():
    # The folder names the resource keys; the assembly binds them (lepton_pipelines.resources).
    repo = bind_resources(defs).get_repository_def()
    assert {j.name for j in repo.get_all_jobs()} >= {"lake_backup", "lake_restore"}
    assert repo.get_schedule_def("lake_backup_daily").job_name == "lake_backup"
    assert repo.get_sensor_def("lepton_run_failure_alert")
    for name in ("lake_backup", "lake_restore"):
        tags = repo.get_job(name).tags
        assert int(tags[MAX_RUNTIME_SECONDS_TAG]) == 6 * 3600
        assert tags[BACKUP_CONCURRENCY_TAG] == "lake"


def test_backup_job_then_restore_job(local_lake, tmp_path):
    instance = DagsterInstance.ephemeral()
    resource = LakeBackupResource(
        lake=LakeResource(url=local_lake.url), backup_url=str(tmp_path / "backups"), keep_snapshots=2
    )
    before = checksums(local_lake)

    snapshots = []
    for _ in range(3):
        result = lake_backup.execute_in_process(resources={"lake_backup": resource}, instance=instance)
        assert result.success
        snapshots.append(result.output_for_node("snapshot_lake"))
    repo = BackupRepository(str(tmp_path / "backups"))
    assert repo.snapshot_ids() == snapshots[-2:]  # retention ran after verification
    materialized = result.get_step_success_events()
    assert [e.step_key for e in materialized] == ["snapshot_lake", "verify_lake_snapshot", "apply_backup_retention"]

    wipe_zones(local_lake)
    restored = lake_restore.execute_in_process(
        run_config={"ops": {"restore_lake_snapshot": {"config": {"snapshot_id": snapshots[1]}}}},
        resources={"lake_backup": resource},
        instance=instance,
    )
    assert restored.success
    assert restored.output_for_node("restore_lake_snapshot")["snapshot_id"] == snapshots[1]
    assert {k: v for k, v in checksums(local_lake).items() if not k.endswith(".tmp")} == {
        k: v for k, v in before.items() if not k.endswith(".tmp")
    }


def test_restore_of_corrupt_snapshot_fails_once_without_retrying(local_lake, tmp_path):
    repo = BackupRepository(str(tmp_path / "backups"))
    snapshot = repo.backup(local_lake).snapshot_id
    victim = repo.load_manifest(snapshot).files[0]
    with open(repo.object_path(victim.sha256), "r+b") as handle:
        handle.write(b"corrupt")

    # The lake still matches the snapshot, so only a full rewrite needs the corrupt object.
    result = lake_restore.execute_in_process(
        run_config={"ops": {"restore_lake_snapshot": {"config": {"snapshot_id": snapshot, "overwrite_all": True}}}},
        resources={"lake_backup": LakeBackupResource(lake=LakeResource(url=local_lake.url), backup_url=repo.url)},
        raise_on_error=False,
    )
    assert not result.success
    event_types = [e.event_type for e in result.all_events]
    assert DagsterEventType.STEP_UP_FOR_RETRY not in event_types  # integrity errors are permanent
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "corrupt" in failure.event_specific_data.error.message
    assert victim.path in failure.event_specific_data.error.message


def test_transient_errors_are_told_apart_from_permanent_ones():
    import urllib.error

    from botocore.exceptions import ClientError, EndpointConnectionError

    throttled = ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "PutObject")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    assert is_transient_error(throttled)
    assert is_transient_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient_error(ConnectionResetError())
    assert is_transient_error(urllib.error.HTTPError("http://x", 503, "unavailable", {}, None))
    assert is_transient_error(urllib.error.HTTPError("http://x", 429, "too many", {}, None))
    assert not is_transient_error(urllib.error.HTTPError("http://x", 404, "missing", {}, None))
    assert not is_transient_error(denied)
    assert not is_transient_error(BackupError("corrupt"))
    assert not is_transient_error(ValueError("bad config"))
    try:
        try:
            raise throttled
        except ClientError as exc:
            raise OSError("s3fs wrapped it") from exc
    except OSError as wrapped:
        assert is_transient_error(wrapped)


def test_max_runtime_tags():
    from datetime import timedelta

    assert max_runtime_tags(timedelta(hours=2)) == {"dagster/max_runtime": "7200"}
    assert max_runtime_tags(90) == {"dagster/max_runtime": "90"}
    with pytest.raises(ValueError, match="positive"):
        max_runtime_tags(0)


class _Webhook:
    """An HTTP server on 127.0.0.1 that records POSTed JSON bodies."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(
                    {"path": self.path, "content_type": self.headers["Content-Type"], "body": json.loads(body)}
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hook = _Webhook()
    yield hook
    hook.close()


@op
def load_prices():
    raise RuntimeError("upstream returned HTTP 500 for /prices")


@job(tags={"lepton/source": "market_data", "secret_looking": "do-not-forward"})
def failing_job():
    load_prices()


def _tick(instance: DagsterInstance, cursor: str | None):
    return lepton_run_failure_alert.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))


def test_run_failure_sensor_posts_json_alert(webhook, monkeypatch):
    monkeypatch.setenv("LEPTON_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("LEPTON_DAGSTER_UI_URL", "https://dagster.example.com/")
    instance = DagsterInstance.ephemeral()
    old = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    first = _tick(instance, cursor=None)  # failures from before the sensor started are history
    assert first.skip_message == "watching for failed runs from now on" and not webhook.received

    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success and result.run_id != old.run_id
    second = _tick(instance, cursor=first.cursor)
    assert second.skip_message == "1 of 1 failed run(s) alerted"

    assert len(webhook.received) == 1
    request = webhook.received[0]
    assert request["path"] == "/hooks/T000/secret-token"
    assert request["content_type"] == "application/json"
    alert = request["body"]
    assert alert["event"] == "dagster.run.failure"
    assert alert["job_name"] == "failing_job"
    assert alert["run_id"] == result.run_id
    assert alert["failed_steps"] == ["load_prices"]
    assert "upstream returned HTTP 500" in alert["message"]
    assert alert["run_url"] == f"https://dagster.example.com/runs/{result.run_id}"
    assert alert["tags"] == {"lepton/source": "market_data"}  # only allow-listed tags are forwarded
    assert "failing_job" in alert["text"]

    third = _tick(instance, cursor=second.cursor)  # each failure is alerted once
    assert third.skip_message == "no failed runs since the last tick" and len(webhook.received) == 1


def test_without_a_webhook_each_tick_says_so_once_for_all_its_failed_runs(monkeypatch, caplog):
    monkeypatch.delenv("LEPTON_ALERT_WEBHOOK_URL", raising=False)
    instance = DagsterInstance.ephemeral()
    cursor = _tick(instance, cursor=None).cursor
    runs = [failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id for _ in range(2)]
    caplog.clear()
    quiet = _tick(instance, cursor=cursor)
    assert quiet.skip_message == (
        "no webhook configured (set LEPTON_ALERT_WEBHOOK_URL); 2 failed run(s) not alerted: "
        f"failing_job ({runs[0][:8]}), failing_job ({runs[1][:8]})"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "not delivered" in r.getMessage()]
    assert _tick(instance, cursor=quiet.cursor).skip_message == (
        "no webhook configured (set LEPTON_ALERT_WEBHOOK_URL); no failed runs since the last tick"
    )


def test_alert_delivery_reports_problems_without_revealing_the_url(monkeypatch):
    monkeypatch.delenv("LEPTON_ALERT_WEBHOOK_URL", raising=False)
    assert post_alert({"text": "x"}).detail.startswith("no webhook configured")
    refusing = _Webhook(status=500)
    try:
        delivery = post_alert({"text": "x"}, webhook_url=refusing.url)
    finally:
        refusing.close()
    assert (delivery.sent, delivery.status) == (False, 500)
    assert "secret-token" not in delivery.detail
    unreachable = post_alert({"text": "x"}, webhook_url="http://127.0.0.1:1/hooks/secret-token", timeout_seconds=2)
    assert not unreachable.sent and "secret-token" not in unreachable.detail
