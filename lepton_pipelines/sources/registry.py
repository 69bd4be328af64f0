"""Load every source YAML: the shipped registry plus each folder in ``LEPTON_SOURCES_PATH``.

All problems across all files are collected and raised together at definitions load time, each naming
the file, the field and what is allowed — one bad source never hides the others' errors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from lepton_pipelines.cleaning import CLEANING_RULES, CleaningRule, ColumnInfo, TableInfo
from lepton_pipelines.cleaning.base import ParseOptions
from lepton_pipelines.connectors import CONNECTORS, Connector
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
        return None, [f"{file}: {_describe(err)}" for err in exc.errors()]
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
    kind = block.get("type")
    if kind not in CONNECTORS:
        problems.append(f"{file}: connector.type: {kind!r} is not a connector type; allowed: {', '.join(sorted(CONNECTORS))}")
        return None
    cls = CONNECTORS[kind]
    try:
        settings = cls.Settings.model_validate(block)
    except ValidationError as exc:
        problems.extend(f"{file}: {_describe(err, prefix='connector')}" for err in exc.errors())
        return None
    return cls(settings)


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
    from lepton_pipelines.governance.expectations import expectation_problems

    problems = []
    for index, entry in enumerate(spec.expectations):
        problems.extend(f"{file}: expectations[{index}] ({entry.expectation}): {p}" for p in expectation_problems(entry, spec))
    names = [e.check_name for e in spec.expectations]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{file}: expectations: two entries share the check name {dup!r}; set a distinct `name:`")
    return problems


def _describe(err: dict[str, Any], prefix: str = "") -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    loc = loc.replace("schema_", "schema")
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(top level)")
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check the spelling; see the source registry schema for allowed fields)"
    elif err.get("type") == "missing":
        msg = "required field is missing"
    value = err.get("input")
    shown = f" (got {value!r})" if err.get("type") not in ("missing",) and not isinstance(value, (dict, list)) else ""
    return f"{field}: {msg}{shown}"
