"""Dagster wiring of delivery: the image build and deploy jobs, the sensors that chain them after a new
model version, and the service catalog of what is deployed (with its refresh sensor). Resources (lake,
image builder) are bound with all the others in ``lepton_pipelines.resources``.

Its own Definitions (merged by ``lepton_pipelines.definitions``) so that models never import delivery:
delivery reads the model registry, models know nothing of images and deployments.
"""

from __future__ import annotations

import dagster as dg

from lepton_pipelines.delivery.images.jobs import build_model_image
from lepton_pipelines.delivery.jobs import deploy_model
from lepton_pipelines.delivery.sensors import image_built_sensor, model_version_sensor
from lepton_pipelines.delivery.service_catalog import service_catalog, service_catalog_sensor

defs = dg.Definitions(
    assets=[service_catalog],
    jobs=[build_model_image, deploy_model],
    sensors=[model_version_sensor, image_built_sensor, service_catalog_sensor],
)  # resources (lake, image_builder) are bound once, per environment, by lepton_pipelines.definitions
