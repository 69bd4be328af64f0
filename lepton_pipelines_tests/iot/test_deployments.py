"""The shipped collector Deployment and broker config are valid and keep secrets out."""

from __future__ import annotations

import kubernetes_validate
import yaml

from lepton_pipelines.iot.definitions import SETTINGS
from lepton_pipelines_tests.iot.conftest import REPO

COLLECTOR = REPO / "deployments" / "collector"


def test_collector_deployment_is_valid_single_replica_with_probes_and_secret_env():
    manifest = yaml.safe_load((COLLECTOR / "deployment.yaml").read_text())
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    spec = manifest["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"  # one session per client id
    container = spec["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["envFrom"] == [{"secretRef": {"name": "lepton-collector"}}]
    assert all("MQTT_URL" not in entry["name"] for entry in container.get("env", []))


def test_dockerfile_runs_the_console_script_without_baked_secrets():
    text = (COLLECTOR / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["lepton-collector"]' in text
    assert "LEPTON_MQTT_URL=" not in text and "PASSWORD" not in text


def test_shipped_broker_config_lifts_the_data_losing_defaults():
    lines = dict(
        line.split(None, 1)
        for line in (REPO / "deployments" / "mosquitto" / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert lines["max_queued_messages"] == "0" and int(lines["max_inflight_messages"]) >= SETTINGS.receive_maximum
    assert lines["persistence"] == "true" and lines["allow_anonymous"] == "false"
    assert "password_file" in lines and "acl_file" in lines
    assert (
        1 <= int(lines["autosave_interval"]) <= 60
    )  # a crash loses at most this many seconds (Mosquitto's default: 1800)
