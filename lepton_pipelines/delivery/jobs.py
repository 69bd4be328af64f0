"""The ``deploy_model`` job: one registered model version's image onto a deploy target.

The op resolves everything that can be wrong — unknown model or version, unknown target, bad
target options, missing image registry — before a target is touched, then hands a
``DeployRequest`` to ``DEPLOY_TARGETS[target]``. Targets verify and roll back themselves; the op
turns their outcome into a ``["models", <name>, "deployment"]`` materialization (success) or an
observation of what still serves plus a failed run with the target's message (failure).
"""

import inspect
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from lepton_pipelines.delivery.images.context import ModelArtifactError, image_reference
from lepton_pipelines.delivery.targets import DEPLOY_TARGETS, DeployFailed, DeployRequest, DeployResult, DeployTarget
from lepton_pipelines.lake.resource import LakeResource
from lepton_pipelines.models.config import ModelConfigError, ModelSpec, load_models, model_by_name
from lepton_pipelines.models.registry import MODELS_ROOT, ModelRegistry, RegistryError

IMAGE_REGISTRY_ENV = "LEPTON_IMAGE_REGISTRY"
DEPLOY_TAGS = {"lepton/deploy": "true"}


class DeployPlanError(ValueError):
    """The deploy run cannot start as configured; nothing was deployed or changed."""


class DeployModelConfig(dg.Config):
    model_name: str = Field(description="Model name as declared in models.yaml and registered in the lake.")
    model_version: str = Field(description="Registered model version; also the image tag.")
    target: str | None = Field(
        default=None, description="docker_host or kubernetes; default: the model's deploy.target in models.yaml."
    )
    deploy_config: dict[str, Any] | None = Field(
        default=None, description="Target-specific deploy configuration; default: the model's deploy.config."
    )
    target_options: dict[str, Any] | None = Field(
        default=None,
        description="Constructor options of the target (e.g. kubernetes: dry_run, kubeconfig, context, host, "
        "token_env_var); default: the model's deploy.target_options.",
    )
    image: str | None = Field(
        default=None,
        description=f"Full image reference; default <${IMAGE_REGISTRY_ENV}>/lepton/model-<name>:<version>.",
    )


@dataclass(frozen=True)
class DeployPlan:
    target: DeployTarget
    request: DeployRequest


def _declared(model_name: str) -> ModelSpec | None:
    try:
        return model_by_name(model_name, load_models())
    except ModelConfigError:
        return None


def _register_targets() -> None:
    """Importing the target packages registers them in DEPLOY_TARGETS. Done by the deploy step, not
    at definitions load: the Docker and Kubernetes clients cost ~0.4 s to import in every process."""
    import lepton_pipelines.delivery.docker_host  # noqa: F401
    import lepton_pipelines.delivery.kubernetes  # noqa: F401


def make_target(name: str, options: dict[str, Any]) -> DeployTarget:
    _register_targets()
    if name not in DEPLOY_TARGETS:
        raise DeployPlanError(f"target {name!r} is unknown; allowed: {', '.join(sorted(DEPLOY_TARGETS))}")
    cls = DEPLOY_TARGETS[name]
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DeployPlanError(
            f"target_options {', '.join(unknown)} are not options of target {name!r}; "
            f"allowed: {', '.join(accepted) or 'none'}"
        )
    return cls(**options)


def plan_deploy(config: DeployModelConfig, registry: ModelRegistry, run_id: str, environ: dict[str, str]) -> DeployPlan:
    """Resolve the run config against models.yaml and the registry; every gap is a DeployPlanError."""
    spec = _declared(config.model_name)
    if spec is None and (config.target is None or config.deploy_config is None):
        raise DeployPlanError(
            f"model {config.model_name!r} is not declared in models.yaml, so it has no default deploy "
            "settings; give 'target' and 'deploy_config' in the run config or declare the model"
        )
    try:
        card = registry.read_card(config.model_version)
    except RegistryError as error:
        raise DeployPlanError(str(error)) from None
    image = config.image
    if image is None:
        registry_host = environ.get(IMAGE_REGISTRY_ENV)
        if not registry_host:
            raise DeployPlanError(
                f"no image registry: set {IMAGE_REGISTRY_ENV} (e.g. 127.0.0.1:5000) or give 'image' in the run config"
            )
        try:
            image = image_reference(registry_host, config.model_name, config.model_version)
        except ModelArtifactError as error:
            raise DeployPlanError(str(error)) from None
    target_name = config.target or spec.deploy.target
    options = (
        config.target_options if config.target_options is not None else (spec.deploy.target_options if spec else {})
    )
    deploy_config = config.deploy_config if config.deploy_config is not None else spec.deploy.config
    return DeployPlan(
        target=make_target(target_name, dict(options)),
        request=DeployRequest(
            model_name=config.model_name,
            model_version=config.model_version,
            image=image,
            run_id=run_id,
            config=dict(deploy_config),
            sample_rows=list(card.get("sample_input") or []),
        ),
    )


def result_metadata(result: DeployResult, request: DeployRequest) -> dict[str, dg.MetadataValue]:
    """The target's outcome for the UI: manifests as YAML, endpoints as links, the rest as JSON."""
    metadata: dict[str, dg.MetadataValue] = {
        "target": dg.MetadataValue.text(result.target),
        "model_version": dg.MetadataValue.text(request.model_version),
        "image": dg.MetadataValue.text(request.image),
        "serving_image": dg.MetadataValue.text(result.serving_image or "nothing"),
        "previous_image": dg.MetadataValue.text(result.previous_image or "none"),
        "rolled_back": dg.MetadataValue.bool(result.rolled_back),
        "message": dg.MetadataValue.text(result.message),
    }
    for key, value in result.details.items():
        if key == "manifests_yaml":
            metadata["manifests"] = dg.MetadataValue.md(f"```yaml\n{value}\n```")
        elif key == "endpoints":
            metadata["endpoints"] = dg.MetadataValue.json(list(value))
            if value:
                metadata["endpoint"] = dg.MetadataValue.url(str(value[0]))
        elif isinstance(value, bool):
            metadata[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, (int, float)):
            metadata[key] = dg.MetadataValue.float(float(value))
        elif isinstance(value, str):
            metadata[key] = dg.MetadataValue.text(value)
        else:
            metadata[key] = dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))
    return metadata


def store_manifests(models_root, request: DeployRequest, result: DeployResult) -> str | None:
    """Keep the exact manifests a run applied (or tried to) as a run artifact next to the model version:
    ``<lake>/models/<name>/<version>/deployments/<run_id>/manifests.yaml`` — what to diff or re-apply."""
    manifests = result.details.get("manifests_yaml")
    if not manifests:
        return None
    folder = models_root / request.model_name / request.model_version / "deployments" / (request.run_id or "manual")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "manifests.yaml"
    target.write_text(manifests if str(manifests).endswith("\n") else f"{manifests}\n")
    return str(target)


def _with_artifact(metadata: dict[str, dg.MetadataValue], path: str | None) -> dict[str, dg.MetadataValue]:
    return {**metadata, "manifests_path": dg.MetadataValue.path(path)} if path else metadata


@dg.op(tags=DEPLOY_TAGS, out={})
def deploy_model_version(
    context: dg.OpExecutionContext, config: DeployModelConfig, lake: LakeResource
) -> Iterator[dg.AssetMaterialization | dg.AssetObservation]:
    """Deploy, verify, and record what serves; on failure the target has rolled back already.

    A generator, so the observation of what still serves is stored before the run fails
    (events logged with ``context.log_event`` are dropped when the op raises).
    """
    models_root = lake.get().path(MODELS_ROOT)
    registry = ModelRegistry(models_root, config.model_name)
    try:
        plan = plan_deploy(config, registry, context.run_id, dict(os.environ))
    except ValueError as error:
        raise dg.Failure(
            description=f"deploy of {config.model_name}:{config.model_version} not started: {error}"
        ) from None
    request = plan.request
    context.log.info(f"deploying {request.image} with target {plan.target.name}")
    key = ["models", request.model_name, "deployment"]
    try:
        result = plan.target.deploy(request, log=context.log.info)
    except DeployFailed as failure:
        artifact = store_manifests(models_root, request, failure.result)
        yield dg.AssetObservation(
            asset_key=key, metadata=_with_artifact(result_metadata(failure.result, request), artifact)
        )
        raise dg.Failure(
            description=f"deploy of {request.image} failed: {failure.result.message}",
            metadata={
                "serving_image": failure.result.serving_image or "nothing",
                "rolled_back": failure.result.rolled_back,
            },
        ) from None
    except ValueError as error:  # the target's own config validation: nothing was touched
        raise dg.Failure(
            description=f"deploy of {request.image} rejected by target {plan.target.name} before any change: {error}"
        ) from None
    artifact = store_manifests(models_root, request, result)
    yield dg.AssetMaterialization(
        asset_key=key, description=result.message, metadata=_with_artifact(result_metadata(result, request), artifact)
    )


@dg.job(
    name="deploy_model",
    description="Deploy one registered model version's image to Kubernetes or a Docker host, with rollback.",
    tags=DEPLOY_TAGS,
)
def deploy_model() -> None:
    deploy_model_version()


def deploy_model_run_config(model_name: str, model_version: str, **overrides: Any) -> dict[str, Any]:
    """Run config for ``deploy_model`` — what the image-built sensor puts in its RunRequest."""
    return {
        "ops": {
            "deploy_model_version": {"config": {"model_name": model_name, "model_version": model_version, **overrides}}
        }
    }
