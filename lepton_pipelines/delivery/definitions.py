"""Dagster wiring of delivery: the image build and deploy jobs, the sensors that chain them after a new
model version, and the image builder resource.

Its own Definitions (merged by ``lepton_pipelines.definitions``) so that models never import delivery:
delivery reads the model registry, models know nothing of images and deployments.
"""
from __future__ import annotations

import dagster as dg

from lepton_pipelines.delivery.images.jobs import build_model_image
from lepton_pipelines.delivery.images.resource import image_builder_from_env
from lepton_pipelines.delivery.jobs import deploy_model
from lepton_pipelines.delivery.sensors import image_built_sensor, model_version_sensor
from lepton_pipelines.resources import SHARED_RESOURCES

defs = dg.Definitions(
    jobs=[build_model_image, deploy_model],
    sensors=[model_version_sensor, image_built_sensor],
    resources={"lake": SHARED_RESOURCES["lake"], "image_builder": image_builder_from_env()},
)
