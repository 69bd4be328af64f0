"""The GX manifest that definitions load validates against can never go stale silently."""

from __future__ import annotations

import pytest

from lepton_pipelines.contract.spec import ExpectationSpec
from lepton_pipelines.governance import expectations
from lepton_pipelines.governance.gx_manifest import MANIFEST_PATH, build_manifest, render

REGENERATE = "python -m lepton_pipelines.governance.gx_manifest"


def test_manifest_matches_the_installed_great_expectations():
    shipped = MANIFEST_PATH.read_text()
    assert render(build_manifest()) == shipped, f"expectations_manifest.json is stale: run `{REGENERATE}` and commit it"


def test_load_uses_the_manifest_only_for_the_version_it_was_made_from(monkeypatch):
    assert expectations.gx_manifest() is not None  # the shipped manifest matches the installed GX
    expectations.gx_manifest.cache_clear()
    monkeypatch.setattr(expectations.importlib_metadata, "version", lambda name: "0.0.0-not-the-manifest")
    try:
        assert expectations.gx_manifest() is None  # → load asks GX itself
    finally:
        expectations.gx_manifest.cache_clear()


CASES = [
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 10}),
    ("expect_column_values_to_be_between", {"column": "amount", "minimum": 0}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "mostly": 3}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "mostly": -0.5}),
    ("expect_column_values_to_be_in_set", {"column": "status"}),
    ("expect_column_values_to_be_in_set", {"column": "status", "value_set": ["a", "b"]}),
    (
        "expect_column_pair_values_to_be_equal",
        {"column_A": "amount", "column_B": "amount", "ignore_row_if": "sometimes"},
    ),
    ("expect_table_row_count_to_be_between", {"min_value": 1}),
    ("expect_column_values_to_be_unique", {"column": "amount"}),
    ("expect_compound_columns_to_be_unique", {"column_list": "amount"}),
]


@pytest.mark.parametrize("name,kwargs", CASES)
def test_manifest_verdicts_agree_with_great_expectations(monkeypatch, name, kwargs):
    """Same entry, same spec: the manifest path and the GX path find problems in the same kwargs,
    and plan the same scope. Cross-field rules of GX's root validators ("min_value and max_value cannot
    both be None", reported on "(entry)") are not in the manifest: GX reports them, naming the
    expectation, when the step builds the suite."""
    spec = _spec()
    entry = ExpectationSpec(expectation=name, kwargs=kwargs)
    by_manifest = expectations.expectation_problems(entry, spec)
    scope_manifest = expectations.expectation_scope(entry)
    monkeypatch.setattr(expectations, "gx_manifest", lambda: None)
    by_gx = expectations.expectation_problems(entry, spec)
    scope_gx = expectations.expectation_scope(entry)
    fields = lambda problems: sorted({p.split(":")[0] for p in problems})  # noqa: E731
    assert fields(by_manifest) == [f for f in fields(by_gx) if f != "kwargs.(entry)"], (by_manifest, by_gx)
    assert scope_manifest == scope_gx


def _spec():
    from lepton_pipelines.contract.documents import shipped_source_file
    from lepton_pipelines.sources.registry import load_source_file

    source, _ = load_source_file(shipped_source_file("transactions"))
    return source.spec
