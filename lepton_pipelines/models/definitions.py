"""Dagster wiring of models and their delivery: training assets, the image/deployment lineage,
the build and deploy jobs, and the sensors that chain them.

The build job (``lepton_pipelines.delivery.images``) is registered here with its resource,
because the sensors that target and monitor it live here; nothing else registers it.
"""
from __future__ import annotations

import dagster as dg

from lepton_pipelines.delivery.images.jobs import build_model_image
from lepton_pipelines.delivery.images.resource import image_builder_from_env
from lepton_pipelines.delivery.jobs import deploy_model
from lepton_pipelines.delivery.sensors import image_built_sensor, model_version_sensor
from lepton_pipelines.delivery.service_catalog import service_catalog, service_catalog_sensor
from lepton_pipelines.models.assets import build_model_asset, delivery_asset_specs
from lepton_pipelines.models.config import ModelSpec, load_models
from lepton_pipelines.resources import SHARED_RESOURCES


def build_models_defs(models: list[ModelSpec]) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_model_asset(spec) for spec in models]
        + [asset_spec for spec in models for asset_spec in delivery_asset_specs(spec)]
        + [service_catalog],
        jobs=[build_model_image, deploy_model],
        sensors=[model_version_sensor, image_built_sensor, service_catalog_sensor],
        resources={"lake": SHARED_RESOURCES["lake"], "image_builder": image_builder_from_env()},
    )


defs = build_models_defs(load_models())
