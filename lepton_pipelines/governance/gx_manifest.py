"""Generate ``expectations_manifest.json``: what the installed Great Expectations offers, as plain data.

Definitions load validates every YAML ``expectations`` entry (name, kwargs, value constraints) and
plans each check's scope (row or table). Importing GX for that costs seconds per process — every
``dagster`` CLI call, every run worker, every UI reload — so load reads this manifest instead, and GX
is imported only by the steps that validate data.

The manifest cannot go stale silently: it records the GX version it was generated from, load falls
back to asking GX itself when the installed version differs, and a test regenerates it and compares.
Regenerate after upgrading GX:  ``python -m lepton_pipelines.governance.gx_manifest``
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

MANIFEST_PATH = Path(__file__).with_name("expectations_manifest.json")
NUMERIC_BOUNDS = ("ge", "gt", "le", "lt")


def build_manifest() -> dict[str, Any]:
    """Every registered DataFrame expectation: its class, whether it is a map (row-level) expectation,
    its fields, the required ones, and the value constraints a YAML author can violate."""
    import great_expectations
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import (
        get_expectation_impl,
        list_registered_expectation_implementations,
    )

    from lepton_pipelines.governance.expectations import NOT_FOR_DATAFRAMES

    expectations: dict[str, Any] = {}
    for name in sorted(list_registered_expectation_implementations()):
        if not name.startswith("expect_") or name in NOT_FOR_DATAFRAMES:
            continue
        cls = get_expectation_impl(name)
        fields = cls.__fields__
        expectations[name] = {
            "class": cls.__name__,
            "map": issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)),
            "fields": sorted(fields),
            "required": sorted(n for n, f in fields.items() if f.required),
            "constraints": {n: c for n, f in sorted(fields.items()) if (c := _constraints(f))},
        }
    return {"great_expectations": great_expectations.__version__, "expectations": expectations}


def _constraints(field: Any) -> dict[str, Any]:
    """Bounds of numeric alternatives, permitted values of Literal fields, and the JSON kinds accepted."""
    found: dict[str, Any] = {}
    alternatives = _alternatives(field.outer_type_)
    for source in (field.field_info, *alternatives):
        for bound in NUMERIC_BOUNDS:
            value = getattr(source, bound, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[bound] = value
    literals = [a for a in alternatives if typing.get_origin(a) is typing.Literal]
    scalars = [
        a
        for a in alternatives
        if a is not type(None) and (typing.get_origin(a) or a) not in (list, tuple, set, frozenset, dict)
    ]
    if literals and len(literals) == len(scalars):  # a single value must be one of the literals
        found["enum"] = [v for lit in literals for v in typing.get_args(lit)]
    kinds = _kinds(alternatives)
    if kinds is not None:
        found["kinds"] = sorted(kinds)
    return found


def _alternatives(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Union:
        return [a for arg in typing.get_args(annotation) for a in _alternatives(arg)]
    return [annotation]


def _kinds(alternatives: list[Any]) -> set[str] | None:
    """Which container shapes a field accepts: 'list', 'dict', 'scalar'. None when any alternative is
    not understood (then nothing is checked at load; GX checks it when the suite is built)."""
    kinds: set[str] = set()
    for alt in alternatives:
        origin = typing.get_origin(alt) or alt
        if alt is type(None):
            continue
        if origin in (list, tuple, set, frozenset):
            kinds.add("list")
        elif origin is dict:
            kinds.add("dict")
        elif origin is typing.Literal or (isinstance(origin, type) and issubclass(origin, (str, int, float, bool))):
            kinds.add("scalar")
        elif isinstance(origin, type) and origin.__module__.startswith("datetime"):
            kinds.add("scalar")
        else:
            return None
    return kinds or None


def render(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def main() -> int:
    MANIFEST_PATH.write_text(render(build_manifest()))
    print(f"wrote {MANIFEST_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
