"""The single Definitions of the Lepton Pipelines code location.

Each folder contributes its own Definitions; this module only loads the source registry (which fails
loudly, listing every problem in every YAML file) and merges them.
"""
from __future__ import annotations

import dagster as dg

from lepton_pipelines.governance import build_governance_defs
from lepton_pipelines.iot.definitions import defs as iot_defs
from lepton_pipelines.models.definitions import defs as models_defs
from lepton_pipelines.platform.definitions import defs as platform_defs
from lepton_pipelines.sources.definitions import build_sources_defs
from lepton_pipelines.sources.registry import load_sources


def build_defs() -> dg.Definitions:
    sources = load_sources()
    return dg.Definitions.merge(
        build_sources_defs(sources),
        build_governance_defs(sources),
        iot_defs,
        models_defs,
        platform_defs,
    )


defs = build_defs()
