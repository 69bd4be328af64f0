"""A real Dagster deployment for the benches: webserver + daemon on a temporary instance, driven over
GraphQL the way the UI drives them.

The instance is the repo's ``dagster.yaml`` (SQLite, queued run coordinator, default run launcher: one
``dagster api execute_run`` process per run) in a temporary DAGSTER_HOME; the code location is
``workspace.yaml``'s, plus any ``extra_locations`` (workspace entries such as a bench's ``python_file``),
written with it to a temporary workspace file. Only the processes started here are stopped, by their process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "lepton_pipelines"
REPOSITORY = "__repository__"

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status startTime endTime } } }"
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status runs(limit: 1000) { runId status creationTime startTime endTime } }
  }
}"""
WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
} } } }"""
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


POSTGRES_URL_ENV = "LEPTON_BENCH_POSTGRES"  # e.g. postgresql://postgres@127.0.0.1:5432 (the local service)


def instance_yaml(dequeue_interval_seconds: int | None, postgres_db: str | None = None) -> str:
    """The repo's dagster.yaml; with ``dequeue_interval_seconds`` its ``run_queue`` dequeues at that
    interval instead of the repo's (1 s; Dagster's default is 5 s). With ``postgres_db`` the storage is
    that Postgres database (as deployments/platform/dagster.yaml), not SQLite files."""
    import yaml

    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    if dequeue_interval_seconds is not None:
        config["run_queue"] = {**config.get("run_queue", {}), "dequeue_interval_seconds": dequeue_interval_seconds}
    if postgres_db is not None:
        from urllib.parse import urlsplit

        url = urlsplit(os.environ.get(POSTGRES_URL_ENV, "postgresql://postgres@127.0.0.1:5432"))
        config["storage"] = {
            "postgres": {
                "postgres_db": {
                    "hostname": url.hostname,
                    "port": url.port or 5432,
                    "username": url.username or "postgres",
                    "password": url.password or "",
                    "db_name": postgres_db,
                    "params": {},
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    return yaml.safe_dump(config, sort_keys=False)


def _postgres(statement: str) -> None:
    from urllib.parse import urlsplit

    import psycopg2

    url = urlsplit(os.environ.get(POSTGRES_URL_ENV, "postgresql://postgres@127.0.0.1:5432"))
    connection = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        dbname="postgres",
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(statement)
    connection.close()


def workspace_yaml(extra_locations: list[dict]) -> str:
    """The repo's ``workspace.yaml`` with ``extra_locations`` appended to its ``load_from``."""
    import yaml

    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    return yaml.safe_dump({**workspace, "load_from": [*workspace["load_from"], *extra_locations]}, sort_keys=False)


class DagsterServices:
    def __init__(
        self,
        env: dict[str, str],
        dequeue_interval_seconds: int | None = None,
        postgres: bool = False,
        extra_locations: list[dict] | None = None,
    ):
        self.home = Path(tempfile.mkdtemp(prefix="lepton-bench-home-"))
        self.workspace = ROOT / "workspace.yaml"
        if extra_locations:
            self.workspace = self.home / "workspace.yaml"
            self.workspace.write_text(workspace_yaml(extra_locations))
        self.postgres_db = f"lepton_bench_{self.home.name.rsplit('-', 1)[-1].lower()}" if postgres else None
        if self.postgres_db:
            _postgres(f"CREATE DATABASE {self.postgres_db}")
        (self.home / "dagster.yaml").write_text(instance_yaml(dequeue_interval_seconds, self.postgres_db))
        self.env = {
            **os.environ,
            **env,
            "DAGSTER_HOME": str(self.home),
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> DagsterServices:
        # one process creates the SQLite storage first; the webserver and daemon racing to create it collide
        subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"], env=self.env, cwd=ROOT, check=True, capture_output=True
        )
        for name, args in (
            (
                "webserver",
                [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.port)],
            ),
            ("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)]),
        ):
            log = (self.home / f"{name}.log").open("w")
            self.processes.append(
                subprocess.Popen(
                    args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        self._wait_until_loaded()
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.home, ignore_errors=True)
        if self.postgres_db:
            _postgres(f"DROP DATABASE IF EXISTS {self.postgres_db} WITH (FORCE)")

    @contextmanager
    def instance(self) -> Iterator[Any]:
        """The services' instance opened in this process, to read what the runs stored (the repo's
        dagster.yaml puts the SQLite files under ``$DAGSTER_HOME``, so it is set while the instance is open)."""
        from dagster import DagsterInstance

        before = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(self.home)
        instance = DagsterInstance.from_config(str(self.home))
        try:
            yield instance
        finally:
            instance.dispose()
            if before is None:
                del os.environ["DAGSTER_HOME"]
            else:
                os.environ["DAGSTER_HOME"] = before

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = json.loads(response.read())
        if "errors" in payload:
            raise RuntimeError(payload["errors"])
        return payload["data"]

    def _wait_until_loaded(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a Dagster service exited; see {self.home}")
            try:
                entries = self.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    failed = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if failed:
                        raise RuntimeError(
                            "code location(s) failed to load: "
                            + "; ".join(f"{e['name']}: {e['locationOrLoadError']['message']}" for e in failed)
                        )
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the code location did not load in time")

    def launch_job(self, job_name: str, partition: str, location: str = LOCATION) -> str:
        """What the UI's launchpad (and a schedule or sensor) submits: a job run for one partition."""
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": REPOSITORY, "pipelineName": job_name},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            "runConfigData": {},
        }
        launched = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(launched)
        return launched["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float = 3600, poll: float = 0.1) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.graphql(RUN_STATUS, {"id": run_id})["runOrError"]
            if run.get("status") in DONE:
                return run
            time.sleep(poll)
        raise RuntimeError(f"run {run_id} did not finish in {timeout} s")

    def launch_backfill(self, asset_paths: list[list[str]], partitions: list[str]) -> str:
        """Assets are selected by key, whichever location defines them (keys are unique in a workspace)."""
        launched = self.graphql(
            LAUNCH_BACKFILL,
            {"params": {"partitionNames": partitions, "assetSelection": [{"path": p} for p in asset_paths]}},
        )
        launched = launched["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(launched)
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float = 7200, poll: float = 1.0) -> dict:
        """Until the daemon marks the backfill done (it looks every 30 s, so up to 30 s after its last run ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            if status["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                return status
            time.sleep(poll)
        raise RuntimeError(f"backfill {backfill_id} did not finish in {timeout} s")
