"""Load every source YAML: the shipped registry plus each folder in ``LEPTON_SOURCES_PATH``.

All problems across all files are collected and raised together at definitions load time, each naming
the file, the field and what is allowed — one bad source never hides the others' errors.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from lepton_pipelines.cleaning import CLEANING_RULES, CleaningRule, ColumnInfo, TableInfo
from lepton_pipelines.cleaning.base import ParseOptions
from lepton_pipelines.connectors import CONNECTORS, Connector, build_connector, parse_connector_settings
from lepton_pipelines.sources.spec import ColumnSpec, SourceSpec

SHIPPED_REGISTRY = Path(__file__).parent / "registry"
SOURCES_PATH_ENV = "LEPTON_SOURCES_PATH"
# libyaml's safe loader when PyYAML was built with it: the registry is parsed each time a run loads the
# code location, and the pure-Python loader costs ~10 ms per source file.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SourceRegistryError(ValueError):
    """Every problem found in the registry, one line each: ``<file>: <field>: <what is wrong/allowed>``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the source registry:\n" + "\n".join(f"  - {p}" for p in problems)
        )


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


def registry_folders() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(SOURCES_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return [SHIPPED_REGISTRY, *extra]


def load_sources(folders: Iterable[Path] | None = None) -> list[Source]:
    problems: list[str] = []
    sources: dict[str, Source] = {}
    origins: dict[str, str] = {}
    for folder in folders if folders is not None else registry_folders():
        if not folder.is_dir():
            problems.append(f"{folder}: {SOURCES_PATH_ENV} names a folder that does not exist")
            continue
        for file in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            source, file_problems = load_source_file(file)
            problems.extend(file_problems)
            if source is None:
                continue
            if source.name in sources:
                problems.append(
                    f"{file}: name: source {source.name!r} is already declared in {origins[source.name]}"
                )
                continue
            sources[source.name] = source
            origins[source.name] = str(file)
    if problems:
        raise SourceRegistryError(problems)
    return [sources[name] for name in sorted(sources)]


def load_source_file(file: Path) -> tuple[Source | None, list[str]]:
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [f"{file}: not valid YAML: {exc}".replace("\n", " ")]
    if not isinstance(raw, dict):
        return None, [f"{file}: expected a mapping of source fields at the top level, got {type(raw).__name__}"]
    try:
        spec = SourceSpec.model_validate(raw)
    except ValidationError as exc:
        return None, [f"{file}: {_describe(err, document=raw)}" for err in exc.errors()]
    spec.origin = str(file)
    problems: list[str] = []
    if spec.name != file.stem:
        problems.append(f"{file}: name: {spec.name!r} must match the file name {file.stem!r}")
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
            return f"connector.{_location(loc, block)}: unknown field{hint}; allowed here (type {kind}): {', '.join(fields)}"
    return _describe({**err, "loc": tuple(loc)}, prefix="connector")


def _build_rules(file: Path, entries: list[dict[str, Any]], table: TableInfo, problems: list[str]) -> list[CleaningRule]:
    rules: list[CleaningRule] = []
    for index, entry in enumerate(entries):
        where = f"cleaning[{index}]"
        name = entry.get("rule") if isinstance(entry, dict) else None
        if name not in CLEANING_RULES:
            problems.append(f"{file}: {where}.rule: {name!r} is not a cleaning rule; allowed: {', '.join(sorted(CLEANING_RULES))}")
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
    # Imported here: governance is optional for loading, but when present every entry is checked
    # against GX's own expectation classes at definitions load time.
    from lepton_pipelines.governance.expectation_lint import lint_expectation
    from lepton_pipelines.governance.expectations import expectation_problems

    problems = []
    for index, entry in enumerate(spec.expectations):
        found = expectation_problems(entry, spec) or lint_expectation(entry, spec)
        problems.extend(f"{file}: expectations[{index}] ({entry.expectation}): {p}" for p in found)
    names = [e.check_name for e in spec.expectations]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{file}: expectations: two entries share the check name {dup!r}; set a distinct `name:`")
    return problems


def _describe(err: dict[str, Any], prefix: str = "", document: Any = None) -> str:
    """One pydantic error in the words of the YAML: columns named by name (``schema[amount].type``),
    unknown fields with the allowed ones and a did-you-mean, YAML's own dates explained."""
    loc = [p for p in err.get("loc", ()) if p != "__root__"]
    field = prefix + ("." if prefix and loc else "") + _location(loc, document) if loc else (prefix or "(top level)")
    kind = err.get("type")
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1], prefix)
        unknown = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        msg = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "") + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        return f"{field}: {msg}"
    if kind == "missing":
        return f"{field}: required field is missing"
    if isinstance(value, (date, datetime)):
        return (f"{field}: YAML read {value.isoformat()} as a date, not text; quote it "
                f"(e.g. {loc[-1] if loc else 'value'}: \"{value.isoformat()}\")")
    shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
    if not loc and not prefix:  # a whole-source rule: its message names the fields itself
        return msg
    return f"{field}: {msg}{shown}"


def _location(loc: list[Any], document: Any) -> str:
    """``['schema', 1, 'type']`` → ``schema[amount].type`` (the column's name), lists by index otherwise."""
    parts: list[str] = []
    node = document
    for part in loc:
        name = "schema" if part == "schema_" else ("from" if part == "from_" else part)
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            label = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
            parts.append(f"[{label}]" if label else f"[{part}]")
            node = item
        else:
            parts.append(("." if parts else "") + str(name))
            node = node.get(name) if isinstance(node, dict) else None
    return "".join(parts)


def _allowed_fields(loc: list[Any], prefix: str) -> list[str]:
    """The fields the model at ``loc`` accepts (by their YAML names)."""
    if prefix == "connector":
        return []  # the connector's Settings list their own fields in their docs
    model: Any = SourceSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = model.model_fields.get(part) or next((f for f in model.model_fields.values() if f.alias == part), None)
        if field_info is None:
            return []
        model = _model_of(field_info.annotation)
        if model is None:
            return []
    return sorted(f.alias or n for n, f in model.model_fields.items() if n != "origin")


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def load_sources_or_explain(folders: Iterable[Path] | None = None) -> list[Source]:
    """``load_sources`` for the code location: a registry problem is printed first, on its own, and
    raised without the chain of loader frames, so the CLI and the UI show what to fix, not a traceback wall."""
    try:
        return load_sources(folders)
    except SourceRegistryError as error:
        print(f"\nLepton source registry: {error}\n", file=sys.stderr)
        raise SourceRegistryError(error.problems) from None
