"""``SourceComponent``: a source as a Dagster Component — one ``defs.yaml`` per source.

``lepton_pipelines/defs/sources/<name>/defs.yaml`` holds ``type: lepton_pipelines.sources.component.SourceComponent``
and, under ``attributes:``, the source's fields exactly as the source contract (``contract.spec.SourceSpec``)
declares them. ``dg list defs`` shows each source's raw/clean/governed assets and checks, ``dg check defs``
validates them and ``dg scaffold defs lepton_pipelines.sources.component.SourceComponent sources/<name>``
writes a new one.

Why the attribute model is open (``SourceAttributes`` accepts any mapping): the file is read and validated by
the one path every loader uses (``sources.registry.load_source_file``), so ``dg check defs``, the code
location and ``load_sources()`` print the same message — naming the file, the field (columns by name) and
what is allowed — instead of a JSON-schema message first and ours later. The attributes are taken literally
(no ``{{ }}`` template rendering): a source means the same in a plain YAML file of ``LEPTON_SOURCES_PATH``
and in a component file. Secrets stay in env vars named by the connector settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict

from lepton_pipelines.contract.documents import COMPONENT_FILE, SourceRegistryError
from lepton_pipelines.sources.factory import build_source_assets
from lepton_pipelines.sources.registry import Source, load_source_file


class SourceAttributes(BaseModel):
    """The fields of one source (see ``lepton_pipelines.contract.spec.SourceSpec``): name, description, owner,
    tags, connector, schema, primary_key, event_time, partitioning, start_date, cleaning, expectations,
    governance, freshness, schedule. Validated by the source registry's loader, not by this model."""

    model_config = ConfigDict(extra="allow", title="Lepton source")


class SourceScaffolder(dg.Scaffolder):
    """``dg scaffold defs ...SourceComponent sources/<name>``: a source that loads as written (a daily CSV
    file drop), named after its folder, to edit from there."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        dg.scaffold_component(request, skeleton_attributes(Path(request.target_path).name))


def skeleton_attributes(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"TODO: what one row of {name} is, and which system delivers it.",
        "owner": "team:data-platform",
        "connector": {"type": "file", "format": "csv", "glob": "date={date}/*.csv"},
        "schema": [
            {"name": "id", "type": "string", "nullable": False, "description": "Record id"},
            {"name": "event_ts", "type": "timestamp", "nullable": False, "description": "When it happened (UTC)"},
        ],
        "primary_key": ["id"],
        "event_time": "event_ts",
        "partitioning": "daily",
        "cleaning": [{"rule": "trim"}, {"rule": "deduplicate"}],
        "expectations": [{"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
    }


@dg.scaffold_with(SourceScaffolder)
class SourceComponent(dg.Component):
    """One Lepton source: ``<name>/raw → <name>/clean → <name>/governed`` with their asset checks, in the
    asset group ``<name>``. Attributes: the source's fields (see ``SourceAttributes``)."""

    def __init__(self, source: Source | None, problems: list[str], origin: str):
        self.source = source
        self.problems = problems
        self.origin = origin

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return SourceAttributes

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> SourceComponent:
        # The file is read again by the registry's own loader rather than taken from Dagster's parse: the
        # same YAML rules (Dagster's parser keeps unquoted dates as text, PyYAML's safe loader does not)
        # and the same messages as a plain file of LEPTON_SOURCES_PATH. context.path is the source's folder.
        return cls.from_file(Path(context.path) / COMPONENT_FILE)

    @classmethod
    def from_file(cls, file: Path) -> SourceComponent:
        source, problems = load_source_file(file)
        return cls(source, problems, str(file))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return source_definitions(self.valid_source())

    def valid_source(self) -> Source:
        if self.problems or self.source is None:
            raise SourceRegistryError(self.problems or [f"{self.origin}: the source did not load"])
        return self.source


def source_definitions(source: Source) -> dg.Definitions:
    """One source's assets and checks (its jobs, schedule and the landing sensor span sources: see
    ``sources.definitions.build_sources_defs``)."""
    return dg.Definitions(assets=build_source_assets(source))
