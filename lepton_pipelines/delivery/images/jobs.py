"""The ``build_model_image`` job: model registry artifact → local image → smoke test → push → asset.

Four ops so the UI shows where a build stopped (wheels/build, a model that does not serve, a
registry that already holds a different image under the version tag), and so a run-status sensor
deploys only after the whole job succeeded. The image is pushed only after its smoke test passed,
and its version tag is written once (``ImageVersionExists`` otherwise): a version in the registry
has always served its own sample input, and always means the same image.
"""

from dataclasses import asdict
from typing import Any

from dagster import (
    AssetMaterialization,
    Config,
    MetadataValue,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field
from upath import UPath

from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.lake.store import Lake

from .builder import BuiltImage, ImageVersionExists
from .context import ModelArtifactError, read_model_card
from .resource import ImageBuilderResource

IMAGE_BUILD_TAGS = {"lepton/image-build": "true"}
# Dagster pool for the Docker-heavy ops: `dagster instance concurrency set lepton_image_build 1`
# keeps parallel model releases from fighting over the engine's CPU and disk.
IMAGE_BUILD_POOL = "lepton_image_build"


class ModelImageConfig(Config):
    model_name: str = Field(description="Model name in the lake's model registry (<lake>/models/<name>/<version>/).")
    model_version: str = Field(description="Model version to build; also the image tag.")
    nocache: bool = Field(default=False, description="Rebuild every image layer (docker build --no-cache).")


def model_artifact_dir(lake: Lake, model_name: str, model_version: str) -> UPath:
    """Where the model registry keeps one version's artifact (model.joblib + model_card.json)."""
    return lake.path("models", model_name, model_version)


def build_model_image_run_config(model_name: str, model_version: str) -> dict[str, Any]:
    """Run config for ``build_model_image`` — what a model-registry sensor puts in its RunRequest."""
    return {
        "ops": {"build_model_image_locally": {"config": {"model_name": model_name, "model_version": model_version}}}
    }


@op(tags=IMAGE_BUILD_TAGS, pool=IMAGE_BUILD_POOL)
def build_model_image_locally(
    context: OpExecutionContext, config: ModelImageConfig, image_builder: ImageBuilderResource, lake: LakeResource
) -> dict[str, Any]:
    """Build the image from the registered artifact with the card's exact library versions (not pushed yet)."""
    artifact = model_artifact_dir(lake.get(), config.model_name, config.model_version)
    card = read_model_card(artifact)
    if (card.name, card.version) != (config.model_name, config.model_version):
        raise ModelArtifactError(
            f"{artifact}/model_card.json describes {card.name}:{card.version}, but the run asked for"
            f" {config.model_name}:{config.model_version}; the registry entry is misfiled"
        )
    built = image_builder.get_builder().build(artifact, nocache=config.nocache, push=False, log=context.log.debug)
    context.log.info(
        f"built {built.reference} (image {built.image_id[:19]}), {built.size_bytes / 1e6:.0f} MB in"
        f" {built.build_seconds:.1f}s; smoke test next, push only if it passes"
    )
    return asdict(built)


@op(tags=IMAGE_BUILD_TAGS)
def smoke_test_model_image(
    context: OpExecutionContext, built: dict[str, Any], image_builder: ImageBuilderResource
) -> dict[str, Any]:
    """Run the local image with the production hardening; fail the run (nothing pushed) if it does not serve.

    It runs the image by its id, not its tag, so the bytes tested are the bytes pushed next even if
    the local tag were moved in between (the push re-checks the id against the registry)."""
    from .smoke import run_smoke_test  # the Docker SDK: imported by this step, not at definitions load

    report = run_smoke_test(context, built["image_id"], ready_timeout_s=image_builder.smoke_ready_timeout_seconds)
    context.log.info(
        f"smoke test of {built['reference']} ({built['image_id'][:19]}) passed: "
        f"{[c['check'] for c in report.get('checks', [])]}"
    )
    return {**report, "image_id": built["image_id"]}


@op(tags=IMAGE_BUILD_TAGS)
def push_model_image(
    context: OpExecutionContext, built: dict[str, Any], smoke: dict[str, Any], image_builder: ImageBuilderResource
) -> dict[str, Any]:
    """Push the smoke-tested image under its version tag — once; a different image under it is refused."""
    if smoke.get("image_id") != built["image_id"]:
        raise ImageVersionExists(f"the smoke test ran {smoke.get('image_id')}, not the built {built['image_id']}")
    pushed = image_builder.get_builder().push(BuiltImage(**built), log=context.log.debug)
    context.log.info(
        f"{built['reference']} is {pushed.digest}"
        + (
            " (already in the registry: same image)"
            if pushed.already_in_registry
            else f", pushed in {pushed.push_seconds:.1f}s"
        )
    )
    return {**asdict(pushed), "smoke_checks": smoke.get("checks", [])}


@op
def record_model_image(context: OpExecutionContext, pushed: dict[str, Any]) -> None:
    smoke = {"checks": pushed.pop("smoke_checks", [])}
    image = BuiltImage(**pushed)
    name = image.labels["org.lepton.model.name"]
    context.log_event(
        AssetMaterialization(
            asset_key=["models", name, "image"],
            description=f"model-service image for {name}:{image.tag}",
            metadata={
                "tag": MetadataValue.text(image.reference),
                "digest": MetadataValue.text(image.digest),
                "size_bytes": MetadataValue.int(image.size_bytes),
                "size_mb": MetadataValue.float(round(image.size_bytes / 1e6, 1)),
                "base_image": MetadataValue.text(image.base_image),
                "library_versions": MetadataValue.json(image.library_versions),
                "lock": MetadataValue.json(image.lock),
                "model_version": MetadataValue.text(image.tag),
                "build_seconds": MetadataValue.float(round(image.build_seconds, 2)),
                "push_seconds": MetadataValue.float(round(image.push_seconds, 2)),
                "already_in_registry": MetadataValue.bool(image.already_in_registry),
                "image_id": MetadataValue.text(image.image_id),
                "smoke_checks": MetadataValue.json(smoke.get("checks", [])),
            },
        )
    )


@job(
    name="build_model_image",
    description="Build the model-service image of one registered model version, smoke-test it, then push it "
    "under its version tag (written once).",
    tags=IMAGE_BUILD_TAGS,
)
def build_model_image() -> None:
    built = build_model_image_locally()
    record_model_image(push_model_image(built, smoke_test_model_image(built)))
