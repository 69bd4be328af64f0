"""Dagster wiring of models: training assets and the image/deployment lineage they lead to.

The jobs and sensors that build and deploy images are delivery's (``lepton_pipelines.delivery.definitions``).
"""

from __future__ import annotations

import dagster as dg

from lepton_pipelines.models.assets import build_model_asset, delivery_asset_specs
from lepton_pipelines.models.config import ModelSpec, load_models


def build_models_defs(models: list[ModelSpec]) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_model_asset(spec) for spec in models]
        + [asset_spec for spec in models for asset_spec in delivery_asset_specs(spec)],
    )


defs = build_models_defs(load_models())
