"""The source contract: what a source declares (``spec``), how a declaration is read and validated
(``documents``), and what the layers above need of a loaded source (``SourceContract``).

Dagster-free and free of connectors, cleaning and governance, so those can all depend on it: the
source spec is the one thing every layer agrees on. See README "Layout" for the allowed dependencies.
"""

from __future__ import annotations

from typing import Protocol

from lepton_pipelines.contract.spec import SourceSpec


class SourceContract(Protocol):
    """A loaded source as governance, analytics and IoT see it: a name and its validated spec.

    ``sources.registry.Source`` satisfies it (and adds the live connector and cleaning rules, which only
    the asset factory needs), so these layers never import the sources package that imports them.
    """

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> SourceSpec: ...


__all__ = ["SourceContract", "SourceSpec"]
