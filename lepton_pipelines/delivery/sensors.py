"""The delivery chain's sensors: new model version → image build → deploy.

``model_version_sensor`` watches every ``<lake>/models/<name>/registry.json`` and requests one
``build_model_image`` run per newly registered version (run key ``<model>:<version>``, so even a
lost cursor cannot build a version twice). ``image_built_sensor`` fires when a build run *succeeds*
— smoke test included — and requests ``deploy_model`` for that version **only if it is the
model's production version** at that moment: every version gets a tested image (ready to roll
forward or back), but only a version that won the champion/challenger rule takes traffic.

Both sensors run by default (the chain is the product), but neither requests a run the platform
cannot carry out: without an image registry (``LEPTON_IMAGE_REGISTRY``) every tick of the version
sensor is skipped with a reason naming that setting, and the build sensor starts stopped, so a laptop
without a registry shows quiet sensors instead of failed builds.
The version sensor's cursor does not advance while it skips: set the registry later and every
version registered meanwhile gets its image. With an empty cursor the version sensor requests builds
for every version already in the registry, once; run keys keep that exactly-once.
"""

import json
import os
from collections.abc import Iterable
from typing import Any

import dagster as dg

from lepton_pipelines.delivery.images.jobs import build_model_image, build_model_image_run_config
from lepton_pipelines.delivery.images.resource import ImageBuilderResource
from lepton_pipelines.delivery.jobs import deploy_model, deploy_model_run_config
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.models.registry import MODELS_ROOT, ModelRegistry, RegistryError, registered_model_names

MODEL_TAG = "lepton/model"
VERSION_TAG = "lepton/model-version"
# One deploy per model at a time: dagster.yaml limits runs per unique value of this tag to 1, so two
# versions never roll out (or roll back) over each other.
DEPLOY_MODEL_TAG = "lepton/deploy-model"
BUILD_JOB_NAME = build_model_image.name
IMAGE_REGISTRY_ENV = "LEPTON_IMAGE_REGISTRY"


def parse_cursor(cursor: str | None) -> dict[str, int]:
    """Cursor: per model, how many entries of its append-only ``versions`` list were handled."""
    if not cursor:
        return {}
    try:
        parsed = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return {str(k): int(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


def new_versions(
    indexes: dict[str, dict[str, Any]], seen: dict[str, int]
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(model, version) pairs registered since ``seen``, oldest first, and the advanced cursor."""
    found: list[tuple[str, str]] = []
    advanced = dict(seen)
    for model, index in sorted(indexes.items()):
        versions = [entry["version"] for entry in index.get("versions", [])]
        start = min(seen.get(model, 0), len(versions))  # an index restored from an older backup resumes at its end
        found.extend((model, version) for version in versions[start:])
        advanced[model] = len(versions)
    return found, advanced


def model_from_run(run: dg.DagsterRun) -> tuple[str, str] | None:
    """The (model, version) a build run was about: from our tags, else from its op config
    (a build launched by hand from the launchpad carries no tags)."""
    if MODEL_TAG in run.tags and VERSION_TAG in run.tags:
        return run.tags[MODEL_TAG], run.tags[VERSION_TAG]
    for op_config in _op_configs(run.run_config):
        if isinstance(op_config.get("model_name"), str) and isinstance(op_config.get("model_version"), str):
            return op_config["model_name"], op_config["model_version"]
    return None


def missing_registry_reason(image_builder: ImageBuilderResource, what: str) -> dg.SkipReason | None:
    """A skip naming the missing setting, or None when the image registry is configured."""
    if image_builder.registry.strip():
        return None
    return dg.SkipReason(
        f"{IMAGE_REGISTRY_ENV} is unset: {what} is off. Set it to a registry host[:port] "
        "(e.g. 127.0.0.1:5000) in the code location's environment to build and deploy model images."
    )


def _op_configs(run_config: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for node in (run_config.get("ops") or {}).values():
        if isinstance(node, dict) and isinstance(node.get("config"), dict):
            yield node["config"]


@dg.sensor(
    name="model_version_sensor",
    job_name=BUILD_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one build_model_image run per newly registered model version (run key model:version).",
)
def model_version_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, image_builder: ImageBuilderResource
) -> dg.SensorResult | dg.SkipReason:
    skip = missing_registry_reason(image_builder, "building an image for each new model version")
    if skip is not None:
        return skip  # the cursor stays: versions registered meanwhile are built once a registry is set
    models_root = lake.get().path(MODELS_ROOT)
    indexes: dict[str, dict[str, Any]] = {}
    for name in registered_model_names(models_root):
        try:
            indexes[name] = ModelRegistry(models_root, name).index()
        except RegistryError as error:  # one broken index must not stop the other models' builds
            context.log.warning(str(error))
    # A model whose index is unreadable this tick keeps its progress in the cursor.
    found, advanced = new_versions(indexes, parse_cursor(context.cursor))
    requests = [
        dg.RunRequest(
            run_key=f"{model}:{version}",
            run_config=build_model_image_run_config(model, version),
            tags={MODEL_TAG: model, VERSION_TAG: version},
        )
        for model, version in found
    ]
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(advanced, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason("no newly registered model versions"),
    )


@dg.run_status_sensor(
    name="image_built_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[build_model_image],
    request_job=deploy_model,
    # Dagster calls a run-status sensor's function only for a finished build, so without a registry its
    # ticks could not say why nothing happens: it starts stopped then, and this description says why.
    default_status=dg.DefaultSensorStatus.RUNNING
    if os.environ.get(IMAGE_REGISTRY_ENV)
    else dg.DefaultSensorStatus.STOPPED,
    description="When a model image build succeeds, deploys it if that version is the model's production alias. "
    f"Starts stopped while {IMAGE_REGISTRY_ENV} is unset (no image can be built or pulled).",
)
def image_built_sensor(context: dg.RunStatusSensorContext, lake: LakeResource, image_builder: ImageBuilderResource):
    skip = missing_registry_reason(image_builder, "deploying built model images")
    if skip is not None:
        return skip
    identity = model_from_run(context.dagster_run)
    if identity is None:
        return dg.SkipReason(f"run {context.dagster_run.run_id} names no model_name/model_version; nothing to deploy")
    model, version = identity
    production = ModelRegistry(lake.get().path(MODELS_ROOT), model).alias("production")
    if production != version:
        return dg.SkipReason(
            f"built {model}:{version}, but production is {production or 'unset'}; only production versions deploy"
        )
    return dg.RunRequest(
        run_key=f"{model}:{version}:{context.dagster_run.run_id}",
        run_config=deploy_model_run_config(model, version),
        tags={
            MODEL_TAG: model,
            VERSION_TAG: version,
            DEPLOY_MODEL_TAG: model,
            "lepton/build-run": context.dagster_run.run_id,
        },
    )
