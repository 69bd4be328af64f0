"""Everything the source registry produces: the sources' component tree (``defs/sources/<name>/defs.yaml``)
plus the plain YAML files of ``LEPTON_SOURCES_PATH``, and what spans sources (jobs, schedules, landing sensor)."""

from __future__ import annotations

import importlib
from pathlib import Path

import dagster as dg

from lepton_pipelines.contract.documents import SHIPPED_SOURCES, iter_source_files, registry_folders
from lepton_pipelines.sources.automation import build_landing_sensor, build_source_jobs, build_source_schedules
from lepton_pipelines.sources.component import SourceComponent, source_definitions
from lepton_pipelines.sources.registry import Source, explained, load_source_file, merge_sources

DEFS_MODULE = "lepton_pipelines.defs"


def component_tree() -> dg.ComponentTree:
    """The defs folder as Dagster's component tree. Built from the module, not from pyproject.toml, so an
    installed package (the user-code image) loads the same way as this checkout."""
    module = importlib.import_module(DEFS_MODULE)
    return dg.ComponentTree.from_module(defs_module=module, project_root=Path(module.__file__).resolve().parents[2])


def load_registry(tree: dg.ComponentTree) -> tuple[list[Source], list[Source]]:
    """(every source by name, the ones from ``LEPTON_SOURCES_PATH``): the defs folder's components and the
    extra folders' files, every problem of both raised together (the same loader as ``load_sources()``)."""
    problems: list[str] = []
    components = tree.get_all_components(of_type=SourceComponent)
    extra = [(file, *load_source_file(file)) for file in iter_source_files(registry_folders()[1:], problems)]
    with explained():
        sources = merge_sources([(c.origin, c.source, c.problems) for c in components] + extra, problems)
    return sources, [source for _, source, _ in extra if source is not None]


def build_sources_defs(tree: dg.ComponentTree, sources: list[Source], extra: list[Source]) -> dg.Definitions:
    """The components' own Definitions, the extra sources' assets, and the automation over every source."""
    jobs = build_source_jobs(sources)
    return dg.Definitions.merge(
        # The sources folder, not the tree's root: the root also renders a JSON schema and sample YAML of
        # every installed component type for the UI's docs (~0.5-0.9 s per load); the tree itself is attached.
        tree.build_defs(SHIPPED_SOURCES),
        dg.Definitions(component_tree=tree),
        *(source_definitions(s) for s in extra),
        dg.Definitions(
            jobs=jobs,
            schedules=build_source_schedules(sources, jobs),
            sensors=[build_landing_sensor(sources, jobs)],
        ),
    )
