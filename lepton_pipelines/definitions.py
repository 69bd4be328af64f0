"""The single Definitions of the Lepton Pipelines code location.

Each folder contributes its own Definitions; this module only loads the source registry — the defs folder's
``SourceComponent``s (``defs/sources/<name>/defs.yaml``) and ``LEPTON_SOURCES_PATH`` (failing loudly, listing
every problem in every YAML file) — merges them, and binds the resources of the current environment
(``lepton_pipelines.resources``, chosen by ``LEPTON_ENV``) to every key they use. The folders' modules are imported as
modules, not their ``defs`` names: Dagster refuses a module with several Definitions at module scope.
"""

# ruff: noqa: E402 — the collector is paused before the imports below, on purpose (see _pause_collector)
from __future__ import annotations

import gc


def _pause_collector() -> bool:
    """Pause the cyclic garbage collector while the code location loads; returns whether it was running.

    Loading imports Dagster, pandas and pyarrow and builds the definitions: ~180,000 objects that live as
    long as the process, allocated so fast that the collector runs a full collection over them several times
    before the load ends (~10-20% of ``python -c "import lepton_pipelines.definitions"``), and finds almost
    nothing to free. Paused here and resumed after ``gc.freeze`` (``_freeze_loaded_objects``), the pattern
    Python documents for preforking servers. The price: the few cycles the imports leave behind are frozen
    with the rest instead of freed, once per process.
    """
    running = gc.isenabled()
    gc.disable()
    return running


_COLLECTOR_WAS_RUNNING = _pause_collector()


def _resume_collector() -> None:
    if _COLLECTOR_WAS_RUNNING:
        gc.enable()


try:  # a failed import resumes the collector too: a code server that reports the error keeps running
    import sys
    import warnings

    import dagster as dg

    from lepton_pipelines.analytics.definitions import build_analytics_defs
    from lepton_pipelines.delivery import definitions as delivery_definitions
    from lepton_pipelines.governance import build_governance_defs
    from lepton_pipelines.iot import definitions as iot_definitions
    from lepton_pipelines.models import definitions as models_definitions
    from lepton_pipelines.platform import definitions as platform_definitions
    from lepton_pipelines.resources import RESOURCES
    from lepton_pipelines.sources.definitions import build_sources_defs, component_tree, load_registry
except BaseException:
    _resume_collector()
    raise

# Asset materializations launched from the UI, sensors and backfills run in an implicit asset job that
# uses this executor: in-process, so a run does not start a fresh interpreter (and re-import the code
# location) per step. Jobs that benefit from parallel steps set their own (see sources.automation).
DEFAULT_EXECUTOR = dg.in_process_executor


def build_defs() -> dg.Definitions:
    with warnings.catch_warnings():
        # Beta/preview APIs we use on purpose (column-schema-change checks, partition mappings that allow
        # missing upstream days, the component tree's code references), pinned with dagster==1.13.27 and
        # covered by tests: not a warning per load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        # Dagster's component YAML parser still calls pydantic's v1-style parse_obj_as (pydantic 2.x warns).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dagster\._utils\.pydantic_yaml")
        tree = component_tree()
        sources, extra = load_registry(tree)
        return _merged(tree, sources, extra)


def _merged(tree: dg.ComponentTree, sources: list, extra: list) -> dg.Definitions:
    return dg.Definitions.merge(
        build_sources_defs(tree, sources, extra),
        build_governance_defs(sources),
        iot_definitions.defs,
        models_definitions.defs,
        delivery_definitions.defs,
        platform_definitions.defs,
        build_analytics_defs(sources),  # built from the one registry load above
        dg.Definitions(executor=DEFAULT_EXECUTOR, resources=RESOURCES),
    )


def _freeze_loaded_objects() -> None:
    """Move every object alive now (the imported libraries, the definitions) to the collector's permanent
    generation.

    They live as long as the process, yet each full collection would walk all ~180,000 of them again —
    during a run's steps and once more at interpreter exit, which was a quarter of
    ``python -c "import lepton_pipelines.definitions"``. Every Dagster process that loads the code location
    (CLI, code server, each run worker) exits that much faster, and a ``forkserver`` child does not touch
    the parent's pages when it collects (Python's documented use of ``gc.freeze``). Skipped when DuckDB was
    imported before the definitions (a bench, a test): its nanobind bindings report objects that are not
    collected at exit as leaks.
    """
    if "duckdb" not in sys.modules:
        gc.freeze()


try:
    defs = build_defs()
    _freeze_loaded_objects()
finally:
    _resume_collector()
