"""What each test needs, as pytest markers — so a laptop without Docker runs the fast part in a minute.

* ``unit`` — pure logic: no Dagster run, no server, no subprocess; ``pytest -m unit`` takes well under 60 s.
* ``integration`` — real Dagster runs, in-test servers (moto's S3, the HTTP API and Kubernetes API
  servers of the tests), the CLI and webserver as subprocesses; no service outside the test.
* ``services`` — needs the machine's services: the Docker engine and registry, PostgreSQL, Mosquitto
  (the shared broker, or a broker process the test starts) or Chromium.
* ``stack`` — brings up the compose stack (slowest).

A test module is classified here, in one place, by its path; a test may also carry a marker itself.
Unit and integration tests are held to it at run time (``ServiceGuard``): connecting to a service port
or the Docker socket, or starting a service's binary, fails the test with a message saying to mark it.
"""

from __future__ import annotations

import os
import sys

KINDS = ("unit", "integration", "services", "stack")

# Paths relative to lepton_pipelines_tests/; a folder ends with "/".
SERVICES = (
    "analytics/test_dashboard.py",
    "connectors/test_secrets_in_dagster.py",
    "connectors/test_sql.py",
    "delivery/docker_host/",
    "delivery/images/test_build_job.py",
    "delivery/images/test_model_image.py",
    "delivery/kubernetes/test_pinning.py",
    "iot/test_broker_crash.py",
    "iot/test_collector_broker.py",
    "iot/test_deployments.py",
    "iot/test_payloads_and_stats.py",
    "iot/test_definitions.py",
    "iot/test_pipeline_visibility.py",
    "models/test_deploy_job.py",
    "platform/test_deployment_files.py",
    "platform/test_first_hour_ui.py",
    "platform/test_instance_postgres.py",
    "platform/test_webserver_ui.py",
)
INTEGRATION = (
    "analytics/",
    "connectors/",
    "delivery/kubernetes/test_deploy.py",
    "delivery/kubernetes/test_service_catalog.py",
    "governance/test_bad_input_corpus.py",
    "governance/test_dagster.py",
    "governance/test_import_budget.py",
    "governance/test_registry_corpus.py",
    "iot/",
    "lake/test_atomic.py",
    "lake/test_io_manager.py",
    "lake/test_store.py",
    "models/test_model_assets.py",
    "models/test_sensors.py",
    "platform/",
    "sources/",
    "test_benches.py",
    "test_definitions.py",
    "test_instance_config.py",
    "test_packaging.py",
    "test_resources.py",
)

# Ports of the machine's services (PostgreSQL, MariaDB, Redis, RabbitMQ, NATS, Mosquitto, the registry).
SERVICE_PORTS = {
    5432: "PostgreSQL",
    3306: "MariaDB",
    6379: "Redis",
    5672: "RabbitMQ",
    4222: "NATS",
    1883: "Mosquitto",
    5000: "the image registry",
}
SERVICE_BINARIES = {
    "docker": "Docker",
    "dockerd": "Docker",
    "mosquitto": "Mosquitto",
    "chromium": "Chromium",
    "psql": "PostgreSQL",
    "docker-compose": "Docker",
}


def kind_of(relative_path: str) -> str:
    """The kind of a test module by its path under lepton_pipelines_tests/ (services before integration)."""
    for kind, prefixes in (("services", SERVICES), ("integration", INTEGRATION)):
        if any(relative_path == p or (p.endswith("/") and relative_path.startswith(p)) for p in prefixes):
            return kind
    return "unit"


class ServiceGuard:
    """An audit hook that fails a unit or integration test reaching a service it is not marked for."""

    def __init__(self) -> None:
        self.active: str | None = None  # the running test's node id, while guarded
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple) -> None:
        if self.active is None:
            return
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and len(address) >= 2 and address[1] in SERVICE_PORTS:
                self._refuse(f"connected to {SERVICE_PORTS[address[1]]} at {address[0]}:{address[1]}")
            if isinstance(address, (str, bytes)) and "docker.sock" in (
                address.decode() if isinstance(address, bytes) else address
            ):
                self._refuse("connected to the Docker engine")
        elif event == "subprocess.Popen":
            executable = os.path.basename(str(args[0] or (args[1][0] if args[1] else "")))
            if executable in SERVICE_BINARIES:
                self._refuse(f"started {executable} ({SERVICE_BINARIES[executable]})")

    def _refuse(self, what: str) -> None:
        test, self.active = self.active, None  # one refusal per test: the hook stays quiet while it unwinds
        raise RuntimeError(
            f"{test} {what}: it needs a service — list its module under SERVICES in lepton_pipelines_tests/kinds.py"
        )
