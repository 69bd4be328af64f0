"""Load every source: the shipped ones (``defs/sources/<name>/defs.yaml``) plus each folder in ``LEPTON_SOURCES_PATH``.

All problems across all files are collected and raised together at definitions load time, each naming
the file, the field and what is allowed — one bad source never hides the others' errors. Reading a file
and validating its spec is the contract's (``contract.documents``, shared with the ``SourceComponent``,
the collector and the IoT wiring); this module adds what needs the layers above the contract: the live
connector, the cleaning rules and the expectations, each checked against its own registry.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lepton_pipelines.cleaning import CLEANING_RULES, CleaningRule, ColumnInfo, TableInfo
from lepton_pipelines.cleaning.base import ParseOptions
from lepton_pipelines.connectors import CONNECTORS, Connector, build_connector, parse_connector_settings
from lepton_pipelines.contract.documents import (
    SourceRegistryError,
    _location,
    _model_of,
    expected_name,
    iter_source_files,
    read_document,
    registry_folders,
    validate_spec,
)
from lepton_pipelines.contract.documents import describe_error as _describe
from lepton_pipelines.contract.spec import ColumnSpec, SourceSpec
from lepton_pipelines.governance.expectation_lint import lint_expectation
from lepton_pipelines.governance.expectations import expectation_problems

__all__ = [
    "Source",
    "SourceRegistryError",
    "load_source_document",
    "load_source_file",
    "load_sources",
    "load_sources_or_explain",
    "merge_sources",
    "registry_folders",
]


@dataclass(frozen=True)
class Source:
    """A validated source: its spec plus the live connector and cleaning rules built from it."""

    spec: SourceSpec
    connector: Connector
    rules: tuple[CleaningRule, ...]
    table: TableInfo

    @property
    def name(self) -> str:
        return self.spec.name


def load_sources(folders: Iterable[Path] | None = None) -> list[Source]:
    """Every source of ``folders`` (default: the shipped ones, then ``LEPTON_SOURCES_PATH``), by name;
    every problem of every file raised together."""
    problems: list[str] = []
    loaded = [
        (file, *load_source_file(file))
        for file in iter_source_files(folders if folders is not None else registry_folders(), problems)
    ]
    return merge_sources(loaded, problems)


def merge_sources(
    loaded: Iterable[tuple[Path | str, Source | None, list[str]]], problems: list[str] | None = None
) -> list[Source]:
    """``(file, source, problems)`` of each file → the sources sorted by name; any problem (or a name
    declared twice) raises ``SourceRegistryError`` listing all of them."""
    problems = list(problems or [])
    sources: dict[str, Source] = {}
    origins: dict[str, str] = {}
    for file, source, file_problems in loaded:
        problems.extend(file_problems)
        if source is None:
            continue
        if source.name in sources:
            problems.append(f"{file}: name: source {source.name!r} is already declared in {origins[source.name]}")
            continue
        sources[source.name] = source
        origins[source.name] = str(file)
    if problems:
        raise SourceRegistryError(problems)
    return [sources[name] for name in sorted(sources)]


def load_source_file(file: Path) -> tuple[Source | None, list[str]]:
    """One source file (plain ``<name>.yaml`` or component ``<name>/defs.yaml``) → its ``Source``, or every problem."""
    raw, problems = read_document(file)
    if raw is None:
        return None, problems
    return load_source_document(raw, file, expected_name(file))


def load_source_document(raw: dict[str, Any], file: Path, name: str | None = None) -> tuple[Source | None, list[str]]:
    """The source fields of one document → its ``Source`` (spec, connector, rules, expectations all
    checked), or every problem, each prefixed with ``file``. ``name``: what the file's place requires."""
    spec, problems = validate_spec(raw, file, name)
    if spec is None:
        return None, problems
    table = TableInfo(
        source=spec.name,
        columns=tuple(column_info(spec, c) for c in spec.columns),
        primary_key=tuple(spec.primary_key),
        event_time=spec.event_time,
    )
    connector = _build_connector(file, spec.connector, problems)
    rules = _build_rules(file, spec.cleaning, table, problems)
    problems.extend(_expectation_problems(file, spec))
    if problems or connector is None:
        return None, problems
    return Source(spec=spec, connector=connector, rules=tuple(rules), table=table), []


def column_info(spec: SourceSpec, column: ColumnSpec) -> ColumnInfo:
    """What typing and the cleaning rules need to know of a declared column."""
    options = ParseOptions(
        formats=column.formats,
        decimal=column.decimal or ".",
        thousands=column.thousands,
        true_values=tuple(column.true_values) if column.true_values is not None else None,
        false_values=tuple(column.false_values) if column.false_values is not None else None,
        timezone=column.timezone or "UTC",
    )
    return ColumnInfo(column.name, column.type, column.nullable, options, column.from_, spec.parse_error_policy(column))


def _build_connector(file: Path, block: dict[str, Any], problems: list[str]) -> Connector | None:
    """One validation of the ``connector:`` block against the union of the connectors' Settings,
    discriminated by ``type``; each pydantic error becomes ``<file>: connector.<field>: ...``."""
    try:
        settings = parse_connector_settings(block)
    except ValidationError as exc:
        problems.extend(f"{file}: {_connector_problem(err, block)}" for err in exc.errors())
        return None
    return build_connector(settings)


def _connector_problem(err: dict[str, Any], block: Any) -> str:
    """A connector error in YAML words: the type's allowed values when it is missing or unknown; else
    the field inside that type's Settings (pydantic puts the tag first in ``loc``: drop it), unknown
    fields with the fields that type accepts."""
    allowed_types = ", ".join(sorted(CONNECTORS))
    kind = block.get("type") if isinstance(block, dict) else None
    if err.get("type") == "union_tag_not_found":
        return f"connector.type: required field is missing; allowed: {allowed_types}"
    if err.get("type") == "union_tag_invalid":
        return f"connector.type: {kind!r} is not a connector type; allowed: {allowed_types}"
    loc = list(err.get("loc", ()))
    if loc and loc[0] == kind and kind in CONNECTORS:
        loc = loc[1:]
    if err.get("type") == "extra_forbidden" and loc and kind in CONNECTORS:
        model: Any = CONNECTORS[kind].Settings
        for part in (p for p in loc[:-1] if not isinstance(p, int)):  # down to the model holding the field
            field_info = model.model_fields.get(part) if model is not None else None
            model = _model_of(field_info.annotation) if field_info is not None else None
        if model is not None:
            fields = sorted(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (
                f"connector.{_location(loc, block)}: unknown field{hint}; allowed here (type {kind}): "
                f"{', '.join(fields)}"
            )
    return _describe({**err, "loc": tuple(loc)}, prefix="connector")


def _build_rules(
    file: Path, entries: list[dict[str, Any]], table: TableInfo, problems: list[str]
) -> list[CleaningRule]:
    rules: list[CleaningRule] = []
    for index, entry in enumerate(entries):
        where = f"cleaning[{index}]"
        name = entry.get("rule") if isinstance(entry, dict) else None
        if name not in CLEANING_RULES:
            problems.append(
                f"{file}: {where}.rule: {name!r} is not a cleaning rule; allowed: {', '.join(sorted(CLEANING_RULES))}"
            )
            continue
        cls = CLEANING_RULES[name]
        try:
            config = cls.Config.model_validate(entry)
        except ValidationError as exc:
            problems.extend(f"{file}: {_describe(err, prefix=where)}" for err in exc.errors())
            continue
        rule = cls(config, table)
        problems.extend(f"{file}: {where} ({name}): {p}" for p in rule.validate_against(table))
        rules.append(rule)
    return rules


def _expectation_problems(file: Path, spec: SourceSpec) -> list[str]:
    problems = []
    for index, entry in enumerate(spec.expectations):
        found = expectation_problems(entry, spec) or lint_expectation(entry, spec)
        problems.extend(f"{file}: expectations[{index}] ({entry.expectation}): {p}" for p in found)
    names = [e.check_name for e in spec.expectations]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{file}: expectations: two entries share the check name {dup!r}; set a distinct `name:`")
    return problems


def load_sources_or_explain(folders: Iterable[Path] | None = None) -> list[Source]:
    """``load_sources`` for the code location (see ``explained``)."""
    with explained():
        return load_sources(folders)


@contextmanager
def explained() -> Iterator[None]:
    """A registry problem is printed first, on its own, and raised without the chain of loader frames,
    so the CLI, ``dg check defs`` and the UI show what to fix, not a traceback wall."""
    try:
        yield
    except SourceRegistryError as error:
        print(f"\nLepton source registry: {error}\n", file=sys.stderr)
        raise SourceRegistryError(error.problems) from None
