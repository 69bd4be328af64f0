"""The package layering of README "Layout": dependencies between the top-level packages of
``lepton_pipelines`` only go the allowed way (so there is no cycle), and neither the product nor the
benchmarks import the tests.

Static (``ast``), so it sees every import — module level, inside functions and under ``TYPE_CHECKING`` —
without importing anything. A new top-level package fails here until it is given its place below.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lepton_pipelines"
TESTS = "lepton_pipelines_tests"

# package → the packages it may import (README "Layout" draws the same graph). Lower layers first.
ALLOWED: dict[str, set[str]] = {
    "contract": set(),  # the source spec: pydantic + PyYAML only, no Dagster
    "lake": set(),
    "platform": {"lake"},  # retries, alerts, backups, launching runs
    "samples": {"lake"},
    "connectors": {"contract", "lake"},
    "cleaning": {"contract", "connectors"},  # connectors: the lineage column names landed rows carry
    # cleaning, connectors: the quarantine/lineage column names and row selection governance reports with
    "governance": {"contract", "lake", "cleaning", "connectors"},
    "sources": {"contract", "lake", "connectors", "cleaning", "governance", "platform"},
    "iot": {"contract", "connectors", "lake"},
    "models": {"contract", "lake", "governance"},  # governance: a table's certification results
    "delivery": {"models", "lake"},  # reads the model registry; models never import delivery
    "analytics": {"models", "contract", "lake"},
    "defs": set(),  # YAML only: one SourceComponent a source
}
# Composition roots: they assemble everything and nothing imports them (but each other). resources.py
# picks every folder's resources per environment; only definitions.py binds them (folders never do).
ROOTS = {
    "resources": set(ALLOWED),
    "definitions": {*ALLOWED, "resources"},
    "demo": {*ALLOWED, "definitions", "resources"},
}


def _imports(file: Path) -> list[tuple[str, int]]:
    """Every ``lepton_pipelines...``/``lepton_pipelines_tests...`` module ``file`` imports, with its line."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package_parts = file.relative_to(ROOT).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = list(package_parts[: len(package_parts) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from lepton_pipelines import iot``: the imported names may be packages themselves
            found += [(module, node.lineno)] + [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _top_level(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


def _package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) top-level packages → where (``file:line``)."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for file in sorted((ROOT / PACKAGE).rglob("*.py")):
        source = file.relative_to(ROOT / PACKAGE).parts[0].removesuffix(".py")
        for module, line in _imports(file):
            target = _top_level(module)
            is_package = target and ((ROOT / PACKAGE / target).is_dir() or (ROOT / PACKAGE / f"{target}.py").is_file())
            if is_package and target != source:
                edges[(source, target)].append(f"{file.relative_to(ROOT)}:{line}")
    return edges


def test_every_top_level_package_has_a_place_in_the_layering():
    present = {
        p.name.removesuffix(".py")
        for p in (ROOT / PACKAGE).iterdir()
        if (p.is_dir() and p.name != "__pycache__") or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert present - set(ALLOWED) - set(ROOTS) == set(), "add the new package to ALLOWED (and README's diagram)"


def test_the_allowed_graph_itself_has_no_cycle():
    allowed = {**ALLOWED, **ROOTS}
    try:
        order = list(TopologicalSorter(allowed).static_order())  # a generator: the cycle check runs as it is consumed
    except CycleError as error:
        raise AssertionError(f"the allowed graph has a cycle: {' → '.join(error.args[1])}") from None
    assert set(order) == set(allowed) | {dst for targets in allowed.values() for dst in targets}
    assert order.index("contract") < order.index("governance") < order.index("sources") < order.index("definitions")


def test_packages_import_only_what_the_layering_allows():
    allowed = {**ALLOWED, **ROOTS}
    bad = {
        f"{src} → {dst}": where for (src, dst), where in _package_edges().items() if dst not in allowed.get(src, set())
    }
    assert bad == {}, "imports against the layering (README 'Layout'):\n" + "\n".join(
        f"  {edge}: {', '.join(where)}" for edge, where in sorted(bad.items())
    )


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in _package_edges():
        graph[src].add(dst)
    assert graph["sources"] >= {"governance", "cleaning", "connectors"}, dict(graph)  # the scan sees the imports
    try:
        order = list(TopologicalSorter(graph).static_order())  # a generator: the cycle check runs as it is consumed
    except CycleError as error:
        raise AssertionError(f"import cycle between packages: {' → '.join(error.args[1])}") from None
    assert set(order) >= set(graph)


def test_product_and_benchmarks_never_import_the_tests():
    offenders = [
        f"{file.relative_to(ROOT)}:{line}"
        for folder in (ROOT / PACKAGE, ROOT / "bench")
        for file in sorted(folder.rglob("*.py"))
        for module, line in _imports(file)
        if module.split(".")[0] == TESTS
    ]
    assert offenders == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The graph would be blind (and this file pass on anything) if these forms were missed."""
    package = tmp_path / PACKAGE / "lake"
    package.mkdir(parents=True)
    file = package / "sample.py"
    file.write_text(
        "def f():\n    from lepton_pipelines.analytics.engine import connect\n"
        "from ..sources import registry\nimport lepton_pipelines_tests.conftest\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    modules = {m for m, _ in _imports(file)}
    assert {
        "lepton_pipelines.analytics.engine",
        "lepton_pipelines.sources.registry",
        "lepton_pipelines_tests.conftest",
    } <= modules
