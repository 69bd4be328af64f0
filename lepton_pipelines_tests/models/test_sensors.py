"""Delivery sensors: one build per new version (and none on the next tick); deploy on build success only."""

import json

import dagster as dg
import pytest

from lepton_pipelines.delivery.images.jobs import build_model_image, build_model_image_run_config
from lepton_pipelines.delivery.images.resource import ImageBuilderResource
from lepton_pipelines.delivery.jobs import deploy_model, deploy_model_run_config
from lepton_pipelines.delivery.sensors import image_built_sensor, model_version_sensor
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake
from lepton_pipelines.models.registry import ModelRegistry
from lepton_pipelines_tests.models.helpers import register

pytestmark = pytest.mark.timeout(120)


def tick(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    lake: Lake,
    cursor: str | None,
    registry: str = "127.0.0.1:5000",
):
    resources = {"lake": LakeResource(url=lake.url), "image_builder": ImageBuilderResource(registry=registry)}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return sensor.evaluate_tick(context)


def test_without_an_image_registry_the_sensors_skip_naming_the_setting_and_build_later(tmp_lake: Lake):
    """A laptop without LEPTON_IMAGE_REGISTRY sees skipped ticks, not failed build runs; once the
    registry is set, the versions registered meanwhile are built (the cursor did not move)."""
    instance = dg.DagsterInstance.ephemeral()
    version = register(tmp_lake, "transaction_risk", b"risk-1", 0.80)
    skipped = tick(model_version_sensor, instance, tmp_lake, cursor=None, registry="")
    assert skipped.run_requests == []
    assert skipped.skip_message.startswith("LEPTON_IMAGE_REGISTRY is unset")
    assert skipped.cursor is None
    built = tick(model_version_sensor, instance, tmp_lake, cursor=skipped.cursor)
    assert [r.run_key for r in built.run_requests] == [f"transaction_risk:{version}"]

    cursor = tick(image_built_sensor, instance, tmp_lake, cursor=None, registry="").cursor
    run_build(instance, tmp_lake, "transaction_risk", version, succeed=True)
    no_deploy = tick(image_built_sensor, instance, tmp_lake, cursor=cursor, registry="")
    assert no_deploy.run_requests == []
    assert no_deploy.skip_message.startswith("LEPTON_IMAGE_REGISTRY is unset")


def test_one_build_per_new_version_and_none_on_the_next_tick(tmp_lake: Lake):
    instance = dg.DagsterInstance.ephemeral()
    risk_v1 = register(tmp_lake, "transaction_risk", b"risk-1", 0.80)
    risk_v2 = register(tmp_lake, "transaction_risk", b"risk-2", 0.70)  # rejected candidates get images too
    anomaly_v1 = register(tmp_lake, "device_anomaly", b"anomaly-1", 0.90)

    first = tick(model_version_sensor, instance, tmp_lake, cursor=None)
    keys = [request.run_key for request in first.run_requests]
    assert keys == [f"device_anomaly:{anomaly_v1}", f"transaction_risk:{risk_v1}", f"transaction_risk:{risk_v2}"]
    request = first.run_requests[1]
    assert request.run_config == build_model_image_run_config("transaction_risk", risk_v1)
    assert request.tags["lepton/model"] == "transaction_risk" and request.tags["lepton/model-version"] == risk_v1
    assert dg.validate_run_config(build_model_image, request.run_config)  # the real build job accepts it

    second = tick(model_version_sensor, instance, tmp_lake, cursor=first.cursor)
    assert second.run_requests == []
    assert second.skip_message == "no newly registered model versions"

    # retraining on identical data registers nothing new, so nothing is built
    assert register(tmp_lake, "transaction_risk", b"risk-1", 0.80) == risk_v1
    assert tick(model_version_sensor, instance, tmp_lake, cursor=second.cursor).run_requests == []

    risk_v3 = register(tmp_lake, "transaction_risk", b"risk-3", 0.85)
    third = tick(model_version_sensor, instance, tmp_lake, cursor=second.cursor)
    assert [r.run_key for r in third.run_requests] == [f"transaction_risk:{risk_v3}"]
    assert json.loads(third.cursor) == {"device_anomaly": 1, "transaction_risk": 3}


def test_an_unreadable_index_does_not_block_other_models(tmp_lake: Lake):
    instance = dg.DagsterInstance.ephemeral()
    register(tmp_lake, "transaction_risk", b"risk-1", 0.80)
    first = tick(model_version_sensor, instance, tmp_lake, cursor=None)
    ModelRegistry(tmp_lake.path("models"), "transaction_risk").index_path.write_text("{truncated")
    anomaly_v1 = register(tmp_lake, "device_anomaly", b"anomaly-1", 0.90)
    second = tick(model_version_sensor, instance, tmp_lake, cursor=first.cursor)
    assert [r.run_key for r in second.run_requests] == [f"device_anomaly:{anomaly_v1}"]
    assert json.loads(second.cursor) == {"device_anomaly": 1, "transaction_risk": 1}


class StandInBuildConfig(dg.Config):
    model_name: str
    model_version: str


@dg.op(name="build_model_image_locally")
def stand_in_build(config: StandInBuildConfig) -> None:
    """Succeeds like a finished build; the real build (Docker) is covered by the images tests."""


@dg.job(name=build_model_image.name)
def stand_in_build_job() -> None:
    stand_in_build()


def run_build(
    instance: dg.DagsterInstance, lake: Lake, model: str, version: str, succeed: bool
) -> dg.ExecuteInProcessResult:
    config = build_model_image_run_config(model, version)
    tags = {"lepton/model": model, "lepton/model-version": version}
    if succeed:
        return stand_in_build_job.execute_in_process(run_config=config, instance=instance, tags=tags)
    # The real build job, failing before Docker is touched: no image registry is configured.
    return build_model_image.execute_in_process(
        run_config=config,
        instance=instance,
        tags=tags,
        resources={"lake": LakeResource(url=lake.url), "image_builder": ImageBuilderResource(registry="")},
        raise_on_error=False,
    )


def test_deploy_is_requested_on_build_success_only_and_for_production_only(tmp_lake: Lake):
    instance = dg.DagsterInstance.ephemeral()
    production = register(tmp_lake, "transaction_risk", b"risk-1", 0.80)
    candidate = register(tmp_lake, "transaction_risk", b"risk-2", 0.70)
    assert ModelRegistry(tmp_lake.path("models"), "transaction_risk").alias("production") == production

    cursor = tick(image_built_sensor, instance, tmp_lake, cursor=None).cursor  # the first tick only sets the cursor

    failed = run_build(instance, tmp_lake, "transaction_risk", production, succeed=False)
    assert not failed.success
    after_failure = tick(image_built_sensor, instance, tmp_lake, cursor=cursor)
    assert after_failure.run_requests == []  # a failed build of the production version deploys nothing

    built_candidate = run_build(instance, tmp_lake, "transaction_risk", candidate, succeed=True)
    after_candidate = tick(image_built_sensor, instance, tmp_lake, cursor=after_failure.cursor or cursor)
    assert after_candidate.run_requests == []
    assert after_candidate.skip_message == (
        f"built transaction_risk:{candidate}, but production is {production}; only production versions deploy"
    )

    built_production = run_build(instance, tmp_lake, "transaction_risk", production, succeed=True)
    evaluation = tick(image_built_sensor, instance, tmp_lake, cursor=after_candidate.cursor)
    assert len(evaluation.run_requests) == 1
    request = evaluation.run_requests[0]
    assert request.run_config == deploy_model_run_config("transaction_risk", production)
    assert request.run_key == f"transaction_risk:{production}:{built_production.run_id}"
    assert request.tags["lepton/build-run"] == built_production.run_id
    assert request.tags["lepton/deploy-model"] == request.tags["lepton/model"]  # one deploy per model at a time
    assert dg.validate_run_config(deploy_model, request.run_config)

    assert tick(image_built_sensor, instance, tmp_lake, cursor=evaluation.cursor).run_requests == []

    # Invoked directly with the candidate's real successful run: skipped, with the reason.
    context = dg.build_run_status_sensor_context(
        sensor_name="image_built_sensor",
        dagster_event=built_candidate.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=built_candidate.dagster_run,
        resources={
            "lake": LakeResource(url=tmp_lake.url),
            "image_builder": ImageBuilderResource(registry="127.0.0.1:5000"),
        },
    )
    skipped = image_built_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and f"production is {production}" in skipped.skip_message


def test_a_hand_launched_build_is_recognised_by_its_run_config(tmp_lake: Lake):
    instance = dg.DagsterInstance.ephemeral()
    production = register(tmp_lake, "device_anomaly", b"anomaly-1", 0.90)
    built = stand_in_build_job.execute_in_process(
        run_config=build_model_image_run_config("device_anomaly", production), instance=instance
    )
    context = dg.build_run_status_sensor_context(
        sensor_name="image_built_sensor",
        dagster_event=built.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=built.dagster_run,
        resources={
            "lake": LakeResource(url=tmp_lake.url),
            "image_builder": ImageBuilderResource(registry="127.0.0.1:5000"),
        },
    )
    request = image_built_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config == deploy_model_run_config("device_anomaly", production)


def test_registry_and_sensor_work_on_an_s3_lake(s3_lake: Lake):
    """The same registry and sensor over S3 (moto's server, real S3 protocol through s3fs)."""
    version = register(s3_lake, "transaction_risk", b"risk-1", 0.80)
    registry = ModelRegistry(s3_lake.path("models"), "transaction_risk")
    assert registry.alias("production") == version
    assert registry.read_artifact(version) == b"risk-1"
    first = tick(model_version_sensor, dg.DagsterInstance.ephemeral(), s3_lake, cursor=None)
    assert [r.run_key for r in first.run_requests] == [f"transaction_risk:{version}"]
