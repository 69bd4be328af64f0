"""The shipped deployment files are well-formed and agree with each other: docker-compose services
and health checks, the instance templates (accepted by Dagster's own config schema), the Helm values
(checked against the deployer identity and turned into the Pod/Job specs the chart renders, validated
with kubernetes-validate for Kubernetes 1.29 and the newest schema), and the user-code Dockerfile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM = REPO_ROOT / "deployments" / "platform"
COMPOSE = PLATFORM / "compose"
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK|ACCESS_KEY", re.I)

pytestmark = pytest.mark.timeout(60)


def load(name: str):
    return yaml.safe_load((PLATFORM / name).read_text())


# -- docker-compose (deployments/platform/compose; brought up for real by test_stack.py) ---------------
def load_compose(name: str):
    return yaml.safe_load((COMPOSE / name).read_text())


ONE_SHOT = {"s3-init"}


def test_compose_has_required_services_each_with_a_healthcheck():
    services = load_compose("docker-compose.yaml")["services"]
    assert {
        "postgres",
        "mosquitto",
        "s3",
        "s3-init",
        "registry",
        "collector",
        "lepton-user-code",
        "dagster-webserver",
        "dagster-daemon",
    } <= set(services)
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"service {name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name
    assert services["lepton-user-code"]["healthcheck"]["test"][1:] == [
        "dagster",
        "api",
        "grpc-health-check",
        "-h",
        "127.0.0.1",
        "-p",
        "14000",
    ]
    # Dagster services start only once their dependencies are healthy (not merely started).
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["lepton-user-code"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["lepton-user-code"]["depends_on"]["s3-init"]["condition"] == "service_completed_successfully"


def test_compose_uses_host_networking_on_loopback_only():
    text = (COMPOSE / "docker-compose.yaml").read_text()
    compose = yaml.safe_load(text)
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        assert "ports" not in service and "networks" not in service, name
    assert "0.0.0.0" not in text and "networks" not in compose
    services = compose["services"]
    assert services["dagster-webserver"]["command"][1:5] == ["-h", "127.0.0.1", "-p", "13000"]
    code_server = services["lepton-user-code"]["command"]
    assert (
        code_server[code_server.index("-h") + 1] == "127.0.0.1" and code_server[code_server.index("-p") + 1] == "14000"
    )
    env = compose["x-dagster-env"]
    assert (env["DAGSTER_POSTGRES_HOSTNAME"], env["DAGSTER_POSTGRES_PORT"]) == ("127.0.0.1", "15432")
    assert services["postgres"]["environment"]["POSTGRES_PORT"] == "15432"
    assert (
        env["LEPTON_S3_ENDPOINT_URL"]
        == "http://127.0.0.1:19000"
        == f"http://127.0.0.1:{services['s3']['environment']['S3_PORT']}"
    )
    assert (
        env["LEPTON_MQTT_URL"].endswith("@127.0.0.1:11883")
        and services["mosquitto"]["environment"]["MOSQUITTO_PORT"] == "11883"
    )
    assert (
        env["LEPTON_IMAGE_REGISTRY"] == services["registry"]["environment"]["REGISTRY_HTTP_ADDR"] == "127.0.0.1:15000"
    )
    # The host's own services keep their ports: 5432, 1883, 5000 and 3000 are never taken by the stack.
    assert not re.search(r"127\.0\.0\.1:(5432|1883|5000|3000)\b", text)


def test_compose_wires_the_docker_run_launcher_to_the_code_image_and_host_network():
    compose = load_compose("docker-compose.yaml")
    user_code = compose["services"]["lepton-user-code"]
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    launcher = load_compose("dagster.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert launcher["config"]["container_kwargs"]["network_mode"] == "host"
    assert "network" not in launcher["config"] and "networks" not in launcher["config"]
    daemon_env = compose["services"]["dagster-daemon"]["environment"]
    missing = [v for v in launcher["config"]["env_vars"] if v not in daemon_env]
    assert not missing, f"run containers get env vars the daemon does not have: {missing}"
    assert "/var/run/docker.sock:/var/run/docker.sock" in compose["services"]["dagster-daemon"]["volumes"]
    # The code server's container context gives runs the host's docker group, the socket and the sources.
    context_text = re.sub(
        r"\$\{([A-Z_]+)[^}]*\}",
        lambda m: {"DOCKER_GID": "118"}.get(m.group(1), "/srv/sources"),
        user_code["environment"]["DAGSTER_CONTAINER_CONTEXT"],
    )
    kwargs = json.loads(context_text)["docker"]["container_kwargs"]
    assert kwargs["group_add"] == ["118"]
    # The service catalog's targets parse (a compose default cannot hold JSON braces: it is a literal).
    from lepton_pipelines.delivery.service_catalog import parse_targets

    assert [t.target for t in parse_targets(compose["x-dagster-env"]["LEPTON_SERVICE_CATALOG_TARGETS"])] == [
        "docker_host"
    ]
    assert "/var/run/docker.sock:/var/run/docker.sock" in user_code["volumes"] and user_code["group_add"]
    assert kwargs["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock", "/srv/sources:/opt/lepton/sources.d:ro"]


def test_compose_mounts_only_files_that_exist():
    for name, service in load_compose("docker-compose.yaml")["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name} mounts missing file {source}"


def test_compose_takes_every_secret_from_the_environment():
    compose = load_compose("docker-compose.yaml")
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and value.startswith("${") and value.endswith("}"), (
                    f"{name}: {key} must come from the environment, not a literal"
                )
    example = dict(
        line.split("=", 1)
        for line in (COMPOSE / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert all(example[k] == "" for k in example if SECRET_NAME.search(k) and k != "LEPTON_DAGSTER_UI_URL")
    assert ".env" in (COMPOSE / ".gitignore").read_text().split()


# -- instance templates ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dagster.yaml", "compose/dagster.yaml"])
def test_instance_templates_pass_dagsters_config_schema(name):
    config = load(name)
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    assert config["run_storage"]["module"] == "dagster_postgres.run_storage"
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        db = config[storage]["config"]["postgres_db"]
        assert db["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"} and db["username"] == {
            "env": "DAGSTER_POSTGRES_USER"
        }
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["compute_logs"]["config"]["bucket"] == {"env": "LEPTON_COMPUTE_LOG_BUCKET"}


def test_docker_instance_is_the_template_plus_the_docker_launcher():
    template, docker = load("dagster.yaml"), load("compose/dagster.yaml")
    assert "run_launcher" not in template  # single host: runs as code-server subprocesses
    assert {k: v for k, v in docker.items() if k != "run_launcher"} == template


def test_workspaces_point_at_their_code_servers():
    # Single host (deployments/README.md): `dagster code-server start -h 127.0.0.1 -p 4000`.
    location = load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert (location["host"], location["port"]) == ("127.0.0.1", 4000)
    # The stack: the user-code service's command.
    stack = load_compose("workspace.yaml")["load_from"][0]["grpc_server"]
    command = load_compose("docker-compose.yaml")["services"]["lepton-user-code"]["command"]
    assert (stack["host"], str(stack["port"])) == (command[command.index("-h") + 1], command[command.index("-p") + 1])
    assert stack["location_name"] == command[command.index("--location-name") + 1]


# -- Helm values -------------------------------------------------------------------------------------
def _deployer_service_account() -> dict:
    rbac = list(yaml.safe_load_all((REPO_ROOT / "deployments" / "kubernetes" / "deployer-rbac.yaml").read_text()))
    return next(o for o in rbac if o and o["kind"] == "ServiceAccount")


def test_helm_values_use_the_chart_keys_and_the_deployer_identity():
    values = load("helm-values.yaml")
    deployer = _deployer_service_account()
    assert values["serviceAccount"] == {"create": False, "name": deployer["metadata"]["name"]}
    assert values["global"]["serviceAccountName"] == deployer["metadata"]["name"] == "lepton-deployer"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["jobNamespace"] == deployer["metadata"]["namespace"]
    assert launcher["runK8sConfig"]["containerConfig"]["resources"]["requests"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "lepton_pipelines.definitions"]
    assert {"name": "lepton-platform-env"} in deployment["envSecrets"]
    assert values["postgresql"]["postgresqlPassword"] == "" and not values["generatePostgresqlPasswordSecret"]
    for item in deployment["env"]:
        assert not SECRET_NAME.search(item["name"]), f"{item['name']} belongs in the lepton-platform-env Secret"


def test_helm_queue_limits_match_the_instance_template():
    values = load("helm-values.yaml")["dagsterDaemon"]
    queued = values["runCoordinator"]["config"]["queuedRunCoordinator"]
    template = load("dagster.yaml")
    assert queued["tagConcurrencyLimits"] == template["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert queued["maxConcurrentRuns"] == template["run_coordinator"]["config"]["max_concurrent_runs"]
    assert (
        values["runMonitoring"]["enabled"]
        and values["runRetries"]["maxRetries"] == template["run_retries"]["max_retries"]
    )


def _user_code_deployment(values: dict) -> dict:
    """The Deployment the chart renders for the user deployment, built from our values."""
    spec = values["dagster-user-deployments"]["deployments"][0]
    image = f"{spec['image']['repository']}:{spec['image']['tag']}"
    labels = {"app.kubernetes.io/name": spec["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec["name"], "namespace": "dagster", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": values["global"]["serviceAccountName"],
                    "securityContext": spec["podSecurityContext"],
                    "containers": [
                        {
                            "name": spec["name"],
                            "image": image,
                            "imagePullPolicy": spec["image"]["pullPolicy"],
                            "args": [
                                "dagster",
                                "api",
                                "grpc",
                                "-h",
                                "0.0.0.0",
                                "-p",
                                str(spec["port"]),
                                *spec["dagsterApiGrpcArgs"],
                            ],
                            "ports": [{"name": "grpc", "containerPort": spec["port"]}],
                            "env": spec["env"],
                            "envFrom": [{"secretRef": s} for s in spec["envSecrets"]],
                            "resources": spec["resources"],
                            "securityContext": spec["securityContext"],
                            "readinessProbe": {
                                "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(spec["port"])]},
                                **spec["readinessProbe"],
                            },
                            "startupProbe": {
                                "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(spec["port"])]},
                                **{k: v for k, v in spec["startupProbe"].items() if k != "enabled"},
                            },
                        }
                    ],
                },
            },
        },
    }


def _run_job(values: dict) -> dict:
    """The Job the K8sRunLauncher creates for a run, with runK8sConfig applied."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_config = launcher["runK8sConfig"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "dagster-run-0123456789abcdef", "namespace": launcher["jobNamespace"]},
        "spec": {
            **run_config["jobSpecConfig"],
            "template": {
                "spec": {
                    **run_config["podSpecConfig"],
                    "restartPolicy": "Never",
                    "serviceAccountName": values["global"]["serviceAccountName"],
                    "containers": [
                        {
                            "name": "dagster",
                            "image": f"{deployment['image']['repository']}:{deployment['image']['tag']}",
                            "imagePullPolicy": launcher["imagePullPolicy"],
                            "args": ["dagster", "api", "execute_run", "{}"],
                            "envFrom": [{"secretRef": s} for s in launcher["envSecrets"]],
                            **run_config["containerConfig"],
                        }
                    ],
                },
            },
        },
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("build", [_user_code_deployment, _run_job], ids=["user-code-deployment", "run-job"])
def test_helm_values_render_valid_kubernetes_objects(build, version):
    rendered = build(load("helm-values.yaml"))
    # validate() raises on any schema violation and returns the schema version it checked against
    assert version.startswith(kubernetes_validate.validate(rendered, version, strict=True))
    pod = rendered["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "lepton-deployer"
    (container,) = pod["containers"]
    assert ":" in container["image"].rsplit("/", 1)[-1] and not container["image"].endswith(":latest")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_helm_values_with_broken_resources_are_rejected(version):
    # The check above is only meaningful if kubernetes-validate rejects what the chart would reject.
    values = load("helm-values.yaml")
    values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"] = {
        "requests": "1Gi"
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(_run_job(values), version, strict=True)


# -- Dockerfile --------------------------------------------------------------------------------------
def dockerfile_cmd() -> list[str]:
    text = (PLATFORM / "Dockerfile").read_text()
    return yaml.safe_load(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


def test_dockerfile_runs_the_code_server_as_non_root():
    text = (PLATFORM / "Dockerfile").read_text()
    cmd = dockerfile_cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == "lepton_pipelines.definitions"
    assert cmd[cmd.index("-p") + 1] == "4000" and "EXPOSE 4000" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    assert not re.search(r"(?i)^(ENV|ARG)\s+\S*(PASSWORD|SECRET|ACCESS_KEY)", text, re.M)
    rules = [
        line
        for line in (PLATFORM / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "**" and "!lepton_pipelines/" in rules  # nothing else (e.g. .env, .venv) is sent


def test_deployments_run_the_production_environment_with_what_it_requires():
    """Compose and Helm load the code location as ``LEPTON_ENV=production`` and give the code server and
    every run what that environment requires (``resources.REQUIRED_VARIABLES``), so a deployment that
    lost its lake URL fails to load instead of writing the lake to a container's own disk."""
    from lepton_pipelines.resources import REQUIRED_VARIABLES, build_resources

    required = REQUIRED_VARIABLES["production"]
    compose_env = load_compose("docker-compose.yaml")["x-dagster-env"]
    run_env = load_compose("dagster.yaml")["run_launcher"]["config"]["env_vars"]
    assert compose_env["LEPTON_ENV"] == "production" and "LEPTON_ENV" in run_env
    assert all(compose_env.get(name) for name in required) and set(required) <= set(run_env)
    helm_env = {
        item["name"]: item.get("value")
        for item in load("helm-values.yaml")["dagster-user-deployments"]["deployments"][0]["env"]
    }
    assert helm_env["LEPTON_ENV"] == "production"
    # Postgres run storage writes a range run's per-partition materializations in batches (bench/backfill.py)
    assert int(compose_env["DAGSTER_EVENT_BATCH_SIZE"]) > 1 and "DAGSTER_EVENT_BATCH_SIZE" in run_env
    assert int(helm_env["DAGSTER_EVENT_BATCH_SIZE"]) > 1
    build_resources("production", helm_env)  # raises naming what is missing
