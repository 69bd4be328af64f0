"""Source documents: finding source YAML files, reading them, and validating their spec — one path.

A source is declared in either of two shapes, with the same fields:

* a plain file ``<name>.yaml`` (the fields at the top level), as in the folders of ``LEPTON_SOURCES_PATH``;
* a Dagster component file ``<name>/defs.yaml`` (``type: ...SourceComponent`` and the fields under
  ``attributes:``), as the shipped sources in ``lepton_pipelines/defs/sources/`` are, so that
  ``dg check defs``, ``dg list defs`` and ``dg scaffold defs`` know them.

Both go through ``read_spec``: the code location's loader (``sources.registry``), the ``SourceComponent``,
the collector and the IoT wiring print the same message for the same mistake. Dagster-free on purpose:
the collector image has no Dagster.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lepton_pipelines.contract.spec import SourceSpec

SOURCES_PATH_ENV = "LEPTON_SOURCES_PATH"
# The shipped sources, one component folder each (the project's dg defs folder, see pyproject.toml).
SHIPPED_SOURCES = Path(__file__).resolve().parent.parent / "defs" / "sources"
COMPONENT_FILE = "defs.yaml"
# The keys of a Dagster component file; any other top-level key means a plain source document.
_COMPONENT_KEYS = {"type", "attributes", "requirements", "template_vars_module", "post_processing"}
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


def registry_folders() -> list[Path]:
    """The shipped sources first, then each folder named in ``LEPTON_SOURCES_PATH``."""
    extra = [Path(p) for p in os.environ.get(SOURCES_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return [SHIPPED_SOURCES, *extra]


def shipped_source_file(name: str) -> Path:
    """The component file of a shipped source, e.g. ``defs/sources/device_telemetry/defs.yaml``."""
    return SHIPPED_SOURCES / name / COMPONENT_FILE


def source_files(folder: Path) -> list[Path]:
    """A folder's source files: ``*.yaml``/``*.yml`` and ``*/defs.yaml`` (one component folder a source)."""
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")) + sorted(folder.glob(f"*/{COMPONENT_FILE}"))


def expected_name(file: Path) -> str:
    """A source's name is its file's name, or its folder's for a component file (``<name>/defs.yaml``)."""
    return file.parent.name if file.name == COMPONENT_FILE else file.stem


def read_document(file: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The source fields of one file (unwrapped from ``attributes:`` in a component file), or the problems."""
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [f"{file}: not valid YAML: {exc}".replace("\n", " ")]
    except OSError as exc:
        return None, [f"{file}: cannot read the source file: {exc.strerror or exc}"]
    return source_fields(raw, file)


def source_fields(raw: Any, file: Path | str) -> tuple[dict[str, Any] | None, list[str]]:
    """``raw`` itself for a plain document; its ``attributes`` for a component file."""
    if isinstance(raw, dict) and "attributes" in raw and set(raw) <= _COMPONENT_KEYS:
        raw = raw["attributes"]
        if not isinstance(raw, dict):
            return None, [f"{file}: attributes: expected a mapping of source fields, got {type(raw).__name__}"]
    if not isinstance(raw, dict):
        return None, [f"{file}: expected a mapping of source fields at the top level, got {type(raw).__name__}"]
    return raw, []


def validate_spec(
    raw: dict[str, Any], file: Path | str, name: str | None = None
) -> tuple[SourceSpec | None, list[str]]:
    """``raw`` as a ``SourceSpec`` (``origin`` set to ``file``), or every problem in the words of the YAML.
    ``name``: what the file's place requires the source to be called (its file or folder name)."""
    try:
        spec = SourceSpec.model_validate(raw)
    except ValidationError as exc:
        return None, [f"{file}: {describe_error(err, document=raw)}" for err in exc.errors()]
    spec.origin = str(file)
    if name is not None and spec.name != name:
        where = "folder" if Path(file).name == COMPONENT_FILE else "file"
        return spec, [f"{file}: name: {spec.name!r} must match the {where} name {name!r}"]
    return spec, []


def read_spec(file: Path) -> tuple[SourceSpec | None, list[str]]:
    """One source file → its validated spec (and the problems, if any; the spec may come with problems)."""
    raw, problems = read_document(file)
    if raw is None:
        return None, problems
    return validate_spec(raw, file, expected_name(file))


def load_spec(file: Path) -> SourceSpec:
    """``read_spec`` for callers that need the spec or a clear error (the collector, the IoT wiring)."""
    spec, problems = read_spec(file)
    if problems or spec is None:
        raise SourceRegistryError(problems)
    return spec


def iter_source_files(folders: Iterable[Path], problems: list[str]) -> Iterable[Path]:
    """Every source file of ``folders``; a folder that does not exist is a problem, not silence."""
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"{folder}: {SOURCES_PATH_ENV} names a folder that does not exist")
            continue
        yield from source_files(folder)


def describe_error(err: dict[str, Any], prefix: str = "", document: Any = None) -> str:
    """One pydantic error in the words of the YAML: columns named by name (``schema[amount].type``),
    unknown fields with the allowed ones and a did-you-mean, YAML's own dates explained."""
    loc = [p for p in err.get("loc", ()) if p != "__root__"]
    field = prefix + ("." if prefix and loc else "") + _location(loc, document) if loc else (prefix or "(top level)")
    kind = err.get("type")
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1], prefix)
        unknown = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        msg = (
            "unknown field"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        )
        return f"{field}: {msg}"
    if kind == "missing":
        return f"{field}: required field is missing"
    if isinstance(value, (date, datetime)):
        return (
            f"{field}: YAML read {value.isoformat()} as a date, not text; quote it "
            f'(e.g. {loc[-1] if loc else "value"}: "{value.isoformat()}")'
        )
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
        field_info = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
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
