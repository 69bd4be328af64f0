"""The service catalog on a Docker host: model services deployed by the real docker_host target are
found from their container labels and probed on their real endpoints; the asset writes the catalog to
the lake and the sensor refreshes it only when something changed."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from lepton_pipelines.delivery.docker_host import DockerHostTarget
from lepton_pipelines.delivery.service_catalog import (
    CATALOG_DIR,
    CATALOG_FILE,
    DEGRADED,
    HEALTHY,
    STOPPED,
    TARGETS_ENV,
    CatalogConfigError,
    CatalogTarget,
    discover,
    parse_targets,
    service_catalog,
    service_catalog_sensor,
)
from lepton_pipelines.lake.resource import LakeResource

from .test_deploy import deployed, request_for

pytestmark = pytest.mark.timeout(240)
DOCKER = CatalogTarget("docker_host")


def mine(found, model_name):
    return [record for record in found.services if record.model == model_name]


def test_deployed_replicas_are_found_from_their_labels_and_probed(docker_client, test_images, model_name, base_port):
    image = test_images["good-v1"]
    DockerHostTarget().deploy(request_for(model_name, image, replicas=2, base_port=base_port), log=lambda _: None)

    (record,) = mine(discover([DOCKER]), model_name)

    assert (record.target, record.version, record.image) == ("docker_host", "good-v1", image)
    assert record.replica_endpoints == [f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{base_port + 1}"]
    assert record.endpoint == record.replica_endpoints[0]  # no gateway in this deploy
    assert (record.health, record.ready_replicas, record.replicas) == (HEALTHY, 2, 2)

    # One replica is stopped (a kill would be undone by its restart policy): the catalog says so, naming
    # the container; then the other one too.
    first, second = sorted(deployed(docker_client, model_name), key=lambda c: c.name)
    first.stop(timeout=1)
    (record,) = mine(discover([DOCKER]), model_name)
    assert record.health == DEGRADED and record.ready_replicas == 1 and first.name in record.detail
    second.stop(timeout=1)
    (record,) = mine(discover([DOCKER]), model_name)
    assert record.health == STOPPED and record.ready_replicas == 0


def test_asset_writes_the_catalog_to_the_lake_and_shows_it(
    docker_client, test_images, model_name, base_port, tmp_lake, monkeypatch
):
    image = test_images["good-v2"]
    DockerHostTarget().deploy(request_for(model_name, image, replicas=1, base_port=base_port), log=lambda _: None)
    monkeypatch.setenv(TARGETS_ENV, json.dumps([{"target": "docker_host"}]))

    result = dg.materialize([service_catalog], resources={"lake": LakeResource()})

    assert result.success
    table = pd.read_parquet(tmp_lake.path(CATALOG_DIR, CATALOG_FILE))
    row = table[table["model"] == model_name].iloc[0]
    assert (row["version"], row["image"], row["health"]) == ("good-v2", image, HEALTHY)
    assert json.loads(row["replica_endpoints"]) == [f"http://127.0.0.1:{base_port}"]
    metadata = result.asset_materializations_for_node("delivery__service_catalog")[0].metadata
    assert model_name in metadata["catalog"].value and metadata["services"].value >= 1


def test_unreachable_target_fails_the_run_after_writing_what_was_found(tmp_lake, monkeypatch):
    monkeypatch.setenv(
        TARGETS_ENV,
        json.dumps([{"target": "docker_host"}, {"target": "docker_host", "docker_host": "tcp://127.0.0.1:9"}]),
    )
    result = dg.materialize([service_catalog], resources={"lake": LakeResource()}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    assert error.cause.cls_name == "ServiceCatalogError" and "tcp://127.0.0.1:9" in error.cause.message
    assert tmp_lake.path(CATALOG_DIR, CATALOG_FILE).exists()  # the reachable target's part is still there


def test_sensor_requests_a_refresh_only_when_the_catalog_changed(
    docker_client, test_images, model_name, base_port, monkeypatch
):
    monkeypatch.setenv(TARGETS_ENV, json.dumps([{"target": "docker_host"}]))
    DockerHostTarget().deploy(request_for(model_name, test_images["good-v1"], base_port=base_port), log=lambda _: None)
    with dg.instance_for_test() as instance:
        first = service_catalog_sensor(dg.build_sensor_context(instance=instance))
        assert len(first.run_requests) == 1
        unchanged = service_catalog_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert isinstance(unchanged, dg.SkipReason)
        for container in deployed(docker_client, model_name):
            container.stop(timeout=1)
        changed = service_catalog_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert len(changed.run_requests) == 1
        assert changed.run_requests[0].tags["lepton/catalog-reason"] == "the deployed services or their health changed"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{", "LEPTON_SERVICE_CATALOG_TARGETS is not JSON"),
        ('{"target": "docker_host"}', "must be a JSON list"),
        (
            '[{"target": "nomad"}]',
            "LEPTON_SERVICE_CATALOG_TARGETS[0]: field 'target' is 'nomad'; allowed: docker_host, kubernetes",
        ),
        (
            '[{"target": "docker_host", "namespace": "x"}]',
            "field(s) namespace are not settings of target 'docker_host'",
        ),
        ('[{"target": "kubernetes", "host": ""}]', "field 'host' must be a non-empty string"),
    ],
)
def test_bad_target_settings_are_named(raw, message):
    with pytest.raises(CatalogConfigError) as error:
        parse_targets(raw)
    assert message in str(error.value)
