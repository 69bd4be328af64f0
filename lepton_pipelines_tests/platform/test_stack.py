"""The production-like stack, for real: `bin/stack up` builds the images from the debootstrapped bases
and starts docker-compose (Postgres, S3, Mosquitto, collector, registry, code server, webserver,
daemon — host networking on loopback); runs are launched the way the UI launches them (GraphQL) and
must run in their own containers (DockerRunLauncher), write the S3 lake and record to Postgres. The
stack is restarted piece by piece mid-run, and torn down — containers, run containers and volumes —
whatever happens.

The tests share one stack and run in file order (each builds on the state the previous left).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from .stack import LOOPBACK_PORTS, REPO_ROOT, Stack, docker, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1500)]

PROJECT = "lepton-stack-test"
SERVICE_IMAGES = {
    "postgres": "POSTGRES",
    "mosquitto": "MOSQUITTO",
    "s3": "S3",
    "registry": "REGISTRY",
    "collector": "COLLECTOR",
    "lepton-user-code": "USER_CODE",
    "dagster-webserver": "DAGSTER",
    "dagster-daemon": "DAGSTER",
}
STARTED_OR_DONE = {"STARTED", "SUCCESS", "FAILURE", "CANCELED"}
LATEST = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { runId partition } } } }"""
SENSORS = """query { sensorsOrError(
    repositorySelector: {repositoryLocationName: "lepton_pipelines", repositoryName: "__repository__"}) {
    __typename ... on Sensors { results { name sensorState { status } } } } }"""
YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
FX_ASSETS = [["fx_rates", "raw"], ["fx_rates", "clean"], ["fx_rates", "governed"]]
# An extra source dropped into the stack's sources folder (the LEPTON_SOURCES_PATH contract) with a
# schedule every minute: the daemon's scheduler ticks it while the test waits.
PROBE_SOURCE = """\
name: stack_probe
description: A one-file reference table, refreshed every minute (the stack test's scheduled source).
owner: team:platform
connector: {type: file, format: csv, glob: "*.csv"}
schema:
  - {name: code, type: string, nullable: false, description: Reference code}
  - {name: value, type: float, description: Its value}
primary_key: [code]
partitioning: none
schedule: "* * * * *"
expectations:
  - {expectation: expect_column_values_to_not_be_null, kwargs: {column: code}}
"""


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    busy = {name: port for name, port in LOOPBACK_PORTS.items() if _port_in_use(port)}
    if busy:
        pytest.fail(
            f"the stack's loopback ports are taken ({busy}): another stack runs here; `bin/stack down` it first"
        )
    folder = tmp_path_factory.mktemp("stack")
    sources = folder / "sources.d"
    sources.mkdir()
    (sources / "stack_probe.yaml").write_text(PROBE_SOURCE)
    stack = Stack(env_file=folder / "stack.env", sources_dir=sources, project=PROJECT)
    started = time.monotonic()
    try:
        up = stack.bin_stack("up")
        stack.bring_up_seconds = time.monotonic() - started
        assert up.returncode == 0, f"bin/stack up failed:\n{up.stdout[-3000:]}\n{up.stderr[-6000:]}"
        _record_figures(stack, up.stderr)
        yield stack
    finally:
        _dump_logs(stack)
        down = stack.bin_stack("down", "--volumes", timeout=300)
        left = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}")
        volumes = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}")
        runs = docker("ps", "-aq", "--filter", "label=org.lepton.component=dagster-run")
        assert down.returncode == 0 and not left.strip() and not volumes.strip() and not runs.strip(), (
            f"teardown left containers {left.split()} volumes {volumes.split()} "
            f"run containers {runs.split()}:\n{down.stderr}"
        )


def _record_figures(stack: Stack, up_log: str) -> None:
    """Bring-up time and image sizes, for the closing note and CI's artifacts."""
    sizes = {
        name: int(docker("image", "inspect", "-f", "{{.Size}}", image).strip()) // 1_000_000
        for name, image in stack.images.items()
    }
    figures = {
        "bring_up_seconds": round(stack.bring_up_seconds, 1),
        "image_mb": sizes,
        "up_log": [line for line in up_log.splitlines() if line.startswith(("stack:", "build-stack-images:"))],
    }
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "stack-figures.json").write_text(json.dumps(figures, indent=2))
    print(f"\nstack figures: {json.dumps(figures)}")


def _dump_logs(stack: Stack) -> None:
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    logs = stack.bin_stack("compose", "logs", "--no-color", "--tail", "200", timeout=120)
    (artifacts / "stack-compose.log").write_text("\n".join(stack.log) + "\n" + logs.stdout + logs.stderr)


def _land_fx_samples(stack: Stack, day: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lepton_pipelines.samples", "--date", day, "--size", "tiny"],
        env=stack.lake_environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def _container_of(run: dict) -> dict:
    container_id = run["tags"]["docker/container_id"]
    return json.loads(docker("inspect", container_id))[0]


# -- 1. up ---------------------------------------------------------------------------------------------
def test_every_service_is_healthy_and_listens_on_loopback_only(stack: Stack):
    services = [
        "postgres",
        "mosquitto",
        "s3",
        "registry",
        "collector",
        "lepton-user-code",
        "dagster-webserver",
        "dagster-daemon",
    ]
    for service in services:
        assert stack.health(service) == "healthy", service
        attrs = json.loads(docker("inspect", stack.container_id(service)))[0]
        assert attrs["HostConfig"]["NetworkMode"] == "host", service
        assert attrs["Config"]["Image"] == stack.images[f"LEPTON_STACK_{SERVICE_IMAGES[service]}_IMAGE"], service
    # gRPC listens on an IPv6 socket bound to the IPv4-mapped loopback: still 127.0.0.1 only.
    listening = {
        c.laddr.port: c.laddr.ip.removeprefix("::ffff:")
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    }
    for name, port in LOOPBACK_PORTS.items():
        assert listening.get(port) == "127.0.0.1", (
            f"{name} should listen on 127.0.0.1:{port}, found {listening.get(port)}"
        )
    # Images are pinned and labelled with what they hold.
    for image in stack.images.values():
        labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image))
        assert labels.get("org.opencontainers.image.version"), f"{image} has no version label"
        assert image.rsplit(":", 1)[1].endswith(labels["org.lepton.stack.input-hash"]), image
    assert stack.bring_up_seconds > 0


# -- 2. a materialization launched like the UI does it ------------------------------------------------
def test_ui_launched_materialization_runs_in_its_own_container_writes_s3_and_postgres(stack: Stack):
    _land_fx_samples(stack, YESTERDAY)
    run_id = stack.launch_assets(FX_ASSETS, tags={"dagster/partition": YESTERDAY})

    run = stack.wait_run(run_id)

    assert run["status"] == "SUCCESS", run
    container = _container_of(run)
    assert container["Config"]["Image"] == stack.images["LEPTON_STACK_USER_CODE_IMAGE"] == run["tags"]["dagster/image"]
    assert container["Config"]["Labels"]["dagster/run_id"] == run_id
    assert container["Config"]["Labels"]["org.lepton.component"] == "dagster-run"
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["Config"]["Healthcheck"]["Test"] == ["NONE"]  # the image's code-server probe is off
    # The run reports SUCCESS just before its process ends; then the container is done, exit code 0.
    wait_for(lambda: _container_of(run)["State"]["Status"] == "exited", 60, "the run container to exit")
    assert _container_of(run)["State"]["ExitCode"] == 0
    # The S3 lake holds the governed partition; Postgres holds the run and its materializations.
    assert any(key.endswith(".parquet") for key in stack.s3_keys(f"lake/governed/fx_rates/date={YESTERDAY}/"))
    assert stack.sql("SELECT status FROM runs WHERE run_id = %s", run_id) == [("SUCCESS",)]
    materialized = stack.sql(
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'", run_id
    )
    assert materialized[0][0] >= 3
    # ...and the UI shows it as the asset's latest materialization.
    latest = stack.gql(LATEST, key={"path": ["fx_rates", "governed"]})
    assert latest["assetOrError"]["assetMaterializations"] == [{"runId": run_id, "partition": YESTERDAY}]
    # Step logs are in the lake's bucket (S3ComputeLogManager), not only in the gone container.
    wait_for(lambda: bool(stack.s3_keys("dagster/compute-logs/")), 90, "compute logs in S3")


# -- 3. restarts ---------------------------------------------------------------------------------------
def test_restarting_webserver_daemon_and_code_server_mid_run_loses_nothing(stack: Stack):
    run_id = stack.launch_assets(FX_ASSETS, tags={"dagster/partition": YESTERDAY})
    stack.wait_run(run_id, STARTED_OR_DONE, interval=0.3)
    stack.compose("restart", "dagster-daemon", "dagster-webserver", "lepton-user-code")

    run = stack.wait_run(run_id)

    assert run["status"] == "SUCCESS", run
    stack.wait_healthy("dagster-daemon", "dagster-webserver", "lepton-user-code")
    # The restarted stack still launches: a new run goes through the restarted daemon.
    again = stack.wait_run(stack.launch_assets([["fx_rates", "raw"]], tags={"dagster/partition": YESTERDAY}))
    assert again["status"] == "SUCCESS", again


def test_killed_run_worker_is_marked_failed_by_run_monitoring_and_retried(stack: Stack):
    run_id = stack.launch_assets(FX_ASSETS, tags={"dagster/partition": YESTERDAY})
    run = stack.wait_run(run_id, STARTED_OR_DONE, interval=0.3)
    assert run["status"] == "STARTED", f"the run finished before its worker could be killed: {run}"
    docker("kill", run["tags"]["docker/container_id"])

    failed = stack.wait_run(run_id, timeout=300)  # run monitoring polls every 60 s
    assert failed["status"] == "FAILURE", failed

    def retried() -> bool:
        return any(r["tags"].get("dagster/parent_run_id") == run_id for r in stack.runs())

    wait_for(retried, 180, f"a retry of {run_id}")
    retry = next(r for r in stack.runs() if r["tags"].get("dagster/parent_run_id") == run_id)
    assert stack.wait_run(retry["runId"])["status"] == "SUCCESS"
    assert _container_of(stack.run(retry["runId"]))["Id"] != run["tags"]["docker/container_id"]


def test_postgres_restart_keeps_the_run_history(stack: Stack):
    before = {row[0]: row[1] for row in stack.sql("SELECT run_id, status FROM runs")}
    assert len(before) >= 4

    stack.compose("restart", "postgres")
    stack.wait_healthy("postgres")

    after = {row[0]: row[1] for row in stack.sql("SELECT run_id, status FROM runs")}
    assert after == before

    # The webserver keeps one pooled connection per storage (run, event log, schedule) without a
    # pre-ping: the first request on each after the restart fails once, then it reconnects. Read from all
    # three until they answer, as an operator's reload would.
    def ui_reads_every_storage() -> bool:
        runs = {r["runId"] for r in stack.runs()}
        latest = stack.gql(LATEST, key={"path": ["fx_rates", "governed"]})["assetOrError"]["assetMaterializations"]
        sensors = stack.gql(SENSORS)["sensorsOrError"]
        return runs >= set(before) and bool(latest) and sensors["__typename"] == "Sensors"

    wait_for(ui_reads_every_storage, 120, "the UI reading runs, materializations and sensor states again")
    run = stack.wait_run(stack.launch_assets([["fx_rates", "raw"]], tags={"dagster/partition": YESTERDAY}))
    assert run["status"] == "SUCCESS", run


# -- 4. schedules, sensors, the collector -------------------------------------------------------------
def test_a_schedule_tick_runs_in_a_container(stack: Stack):
    stack.s3().put_object(
        Bucket=stack.secrets["LEPTON_LAKE_BUCKET"],
        Key="lake/landing/stack_probe/codes.csv",
        Body=b"code,value\nA,1.5\nB,2.5\n",
    )
    stack.start_schedule("stack_probe_daily")

    def ticked() -> list[dict]:
        return [r for r in stack.runs() if r["tags"].get("dagster/schedule_name") == "stack_probe_daily"]

    wait_for(lambda: bool(ticked()), 180, "a run of schedule stack_probe_daily")
    stack.stop_schedule("stack_probe_daily")  # one tick proves it; one a minute would only load the machine
    run = stack.wait_run(ticked()[-1]["runId"])
    assert run["status"] == "SUCCESS", run
    assert _container_of(run)["HostConfig"]["NetworkMode"] == "host"
    assert any(key.endswith(".parquet") for key in stack.s3_keys("lake/governed/stack_probe/"))


def test_collector_lands_telemetry_and_a_sensor_run_governs_it(stack: Stack):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    day = start.date().isoformat()
    secrets = stack.secrets
    publish = subprocess.run(
        [
            sys.executable,
            "-m",
            "lepton_pipelines.iot.simulator",
            "--devices",
            "3",
            "--messages-per-device",
            "20",
            "--interval-seconds",
            "1",
            "--start",
            start.isoformat(),
            "--spike-rate",
            "0",
            "--gap-rate",
            "0",
            "--missing-rate",
            "0",
            "--duplicate-rate",
            "0",
            "--malformed-rate",
            "0",
            "--device-prefix",
            "stack-dev",
        ],
        env={
            **stack.lake_environ(),
            "LEPTON_MQTT_URL": f"mqtt://lepton-gateway:{secrets['LEPTON_MQTT_GATEWAY_PASSWORD']}@127.0.0.1:11883",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert publish.returncode == 0, publish.stderr
    wait_for(
        lambda: bool(stack.s3_keys(f"lake/landing/device_telemetry/date={day}/")), 60, "the collector's landing files"
    )

    # Only the telemetry waits in the landing zone: the earlier tests' sample files of the batch sources
    # would each get a run on the sensor's first tick, loading the 2-core machine for nothing here.
    s3, bucket = stack.s3(), stack.secrets["LEPTON_LAKE_BUCKET"]
    for key in stack.s3_keys("lake/landing/"):
        if not key.startswith("lake/landing/device_telemetry/"):
            s3.delete_object(Bucket=bucket, Key=key)
    stack.start_sensor("landing_zone_sensor")

    def governed_runs() -> list[dict]:
        return [
            r
            for r in stack.runs()
            if r["tags"].get("dagster/sensor_name") == "landing_zone_sensor" and r["jobName"] == "device_telemetry_job"
        ]

    wait_for(lambda: bool(governed_runs()), 240, "a landing_zone_sensor run of device_telemetry_job")
    run = stack.wait_run(governed_runs()[0]["runId"])
    assert run["status"] == "SUCCESS", run
    assert _container_of(run)["Config"]["Image"] == stack.images["LEPTON_STACK_USER_CODE_IMAGE"]
    assert any(key.endswith(".parquet") for key in stack.s3_keys(f"lake/governed/device_telemetry/date={day}/"))


def test_service_catalog_sensor_finds_a_labelled_model_service(stack: Stack):
    """A model service as the docker_host target labels it, answering /health on loopback: the catalog
    sensor (running by default) refreshes delivery/service_catalog in a run container, which asks the
    host's Docker engine through the socket the container context mounts."""
    port = 18931
    name = f"{PROJECT}-model-probe"
    server = (
        "import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n def do_GET(s):\n"
        "  s.send_response(200); s.end_headers(); s.wfile.write(b'ok')\n"
        f"h.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        "HOST=127.0.0.1",
        "--label",
        "org.lepton.deploy.target=docker_host",
        "--label",
        "org.lepton.model.name=stack_probe_model",
        "--label",
        "org.lepton.model.version=3",
        "--label",
        f"org.lepton.deploy.port={port}",
        "--label",
        "org.lepton.deploy.image=127.0.0.1:15000/lepton/model-stack_probe_model:3",
        "lepton/python-base:bookworm",
        "python3",
        "-c",
        server,
    )
    try:

        def catalogued() -> bool:
            import io

            import pandas as pd

            keys = stack.s3_keys("lake/_delivery/service_catalog.parquet")
            if not keys:
                return False
            body = stack.s3().get_object(Bucket=stack.secrets["LEPTON_LAKE_BUCKET"], Key=keys[0])["Body"].read()
            table = pd.read_parquet(io.BytesIO(body))
            rows = table[table["model"] == "stack_probe_model"]
            return (
                len(rows) == 1
                and rows.iloc[0]["health"] == "healthy"
                and rows.iloc[0]["endpoint"] == f"http://127.0.0.1:{port}"
            )

        wait_for(catalogued, 300, "stack_probe_model in the service catalog")
        runs = [r for r in stack.runs() if r["tags"].get("dagster/sensor_name") == "service_catalog_sensor"]
        assert runs and all(
            _container_of(r)["Config"]["Image"] == stack.images["LEPTON_STACK_USER_CODE_IMAGE"] for r in runs
        )
    finally:
        docker("rm", "-f", name, check=False)


# -- 5. the daemon alone mid-run; the stack down and up again (the fixture then removes everything) --
def test_daemon_restart_alone_mid_run_keeps_the_run(stack: Stack):
    _land_fx_samples(stack, YESTERDAY)  # the telemetry test emptied the batch sources' landing zone
    run_id = stack.launch_assets(FX_ASSETS, tags={"dagster/partition": YESTERDAY})
    stack.wait_run(run_id, STARTED_OR_DONE, interval=0.3)
    stack.compose("restart", "dagster-daemon")
    assert stack.wait_run(run_id)["status"] == "SUCCESS"
    assert Path(stack.env_file).stat().st_mode & 0o077 == 0, "the stack's secrets file must be private"


def test_stack_comes_back_with_one_command_and_keeps_its_history(stack: Stack):
    before = {row[0] for row in stack.sql("SELECT run_id FROM runs")}
    down = stack.bin_stack("down", timeout=300)  # keeps the volumes
    assert down.returncode == 0, down.stderr
    assert not docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").strip()

    up = stack.bin_stack("up")

    assert up.returncode == 0, up.stderr[-3000:]
    # Every run from before is still there (running sensors may already have added new ones).
    assert {row[0] for row in stack.sql("SELECT run_id FROM runs")} >= before
    wait_for(lambda: {r["runId"] for r in stack.runs()} >= before, 120, "the UI listing the runs from before")
