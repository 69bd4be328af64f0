"""Drives the platform stack (bin/stack, deployments/platform/compose) from a test: bring-up and
tear-down, the UI's GraphQL API, the stack's S3, Postgres and Docker containers — all on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
UI = "http://127.0.0.1:13000"
S3_ENDPOINT = "http://127.0.0.1:19000"
POSTGRES_PORT = 15432
MQTT_PORT = 11883
LOOPBACK_PORTS = {
    "webserver": 13000,
    "code server": 14000,
    "postgres": POSTGRES_PORT,
    "mosquitto": MQTT_PORT,
    "s3": 19000,
    "registry": 15000,
    "collector": 19464,
}
LOCATION = "lepton_pipelines"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}"""
RUN = """
query Run($id: ID!) {
  runOrError(runId: $id) { __typename ... on Run { runId status jobName tags { key value } } }
}"""
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { __typename ... on Runs { results { runId status jobName tags { key value } } } }
}"""
LATEST_MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { __typename ... on Asset { assetMaterializations(limit: 1) { runId partition } } }
}"""
START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
  }
}"""
STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message }
  }
}"""
SCHEDULE_STATE = """
query State($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) { __typename ... on Schedule { scheduleState { id selectorId status } } }
}"""
START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message }
  }
}"""


def read_env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


@dataclass
class Stack:
    env_file: Path
    sources_dir: Path
    project: str
    bring_up_seconds: float = 0.0
    log: list[str] = field(default_factory=list)

    # -- processes -------------------------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "LEPTON_STACK_PROJECT": self.project,
            "LEPTON_STACK_ENV_FILE": str(self.env_file),
            "LEPTON_STACK_SOURCES_DIR": str(self.sources_dir),
        }

    def bin_stack(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["bash", str(REPO_ROOT / "bin" / "stack"), *args],
            env=self.environ(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.log.append(
            f"$ bin/stack {' '.join(args)} -> {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
        return result

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = self.bin_stack("compose", *args, timeout=timeout)
        assert result.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{result.stderr[-3000:]}"
        return result

    @property
    def secrets(self) -> dict[str, str]:
        return read_env_file(self.env_file)

    @property
    def images(self) -> dict[str, str]:
        return read_env_file(Path(f"{self.env_file}.images"))

    def container_id(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        return docker(
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            self.container_id(service),
        ).strip()

    def wait_healthy(self, *services: str, timeout: float = 300) -> None:
        wait_for(lambda: all(self.health(s) == "healthy" for s in services), timeout, f"{services} healthy")

    # -- clients ---------------------------------------------------------------------------------
    def s3(self):
        import boto3

        secrets = self.secrets
        return boto3.client(
            "s3",
            endpoint_url=S3_ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id=secrets["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secrets["AWS_SECRET_ACCESS_KEY"],
        )

    def s3_keys(self, prefix: str) -> list[str]:
        answer = self.s3().list_objects_v2(Bucket=self.secrets["LEPTON_LAKE_BUCKET"], Prefix=prefix)
        return [item["Key"] for item in answer.get("Contents", [])]

    def postgres(self):
        import psycopg2

        secrets = self.secrets
        return psycopg2.connect(
            host="127.0.0.1",
            port=POSTGRES_PORT,
            dbname=secrets["DAGSTER_POSTGRES_DB"],
            user=secrets["DAGSTER_POSTGRES_USER"],
            password=secrets["DAGSTER_POSTGRES_PASSWORD"],
            connect_timeout=10,
        )

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with self.postgres() as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def lake_environ(self) -> dict[str, str]:
        """What a program on the host needs to write the stack's lake (an external system landing files)."""
        secrets = self.secrets
        return {
            **os.environ,
            "LEPTON_LAKE_URL": f"s3://{secrets['LEPTON_LAKE_BUCKET']}/lake",
            "LEPTON_S3_ENDPOINT_URL": S3_ENDPOINT,
            "AWS_ACCESS_KEY_ID": secrets["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": secrets["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": str(REPO_ROOT),
        }

    # -- the UI's GraphQL API --------------------------------------------------------------------
    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{UI}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with _DIRECT.open(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def launch_assets(self, paths: list[list[str]], tags: dict[str, str] | None = None) -> str:
        """What the UI's Materialize button sends: the implicit asset job with an asset selection."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": path} for path in paths],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        answer = self.gql(LAUNCH_RUN, params=params)["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        return answer["run"]["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.gql(RUN, id=run_id)["runOrError"]
        assert run["__typename"] == "Run", run
        run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        return run

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        answer = self.gql(RUNS, filter=filters)["runsOrError"]
        assert answer["__typename"] == "Runs", answer
        for run in answer["results"]:
            run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        return answer["results"]

    def wait_run(
        self, run_id: str, statuses: set[str] = TERMINAL, timeout: float = 420, interval: float = 2.0
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.run(run_id))
            return found["status"] in statuses

        wait_for(
            reached,
            timeout,
            f"run {run_id} to reach {sorted(statuses)}",
            lambda: f"last status {found.get('status')}",
            interval,
        )
        return found

    def start_sensor(self, name: str) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": name}
        answer = self.gql(START_SENSOR, selector=selector)["startSensor"]
        assert answer["__typename"] == "Sensor" and answer["sensorState"]["status"] == "RUNNING", answer

    def start_schedule(self, name: str) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "scheduleName": name}
        answer = self.gql(START_SCHEDULE, selector=selector)["startSchedule"]
        assert answer["__typename"] == "ScheduleStateResult" and answer["scheduleState"]["status"] == "RUNNING", answer

    def stop_schedule(self, name: str) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "scheduleName": name}
        state = self.gql(SCHEDULE_STATE, selector=selector)["scheduleOrError"]["scheduleState"]
        answer = self.gql(STOP_SCHEDULE, id=state["id"])["stopRunningSchedule"]
        assert answer["__typename"] == "ScheduleStateResult" and answer["scheduleState"]["status"] == "STOPPED", answer


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    describe: Callable[[], str] = lambda: "",
    interval: float = 2.0,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (OSError, AssertionError, ValueError):  # a service restarting answers nothing for a moment
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}. {describe()}")
        time.sleep(interval)
