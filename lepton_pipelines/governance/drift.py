"""Schema drift: the landed schema of a partition compared with the declared one.

Types are compared in the registry's vocabulary (string, integer, float, boolean, timestamp, date).
Text formats (CSV, text-encoded JSON fields) land every value as a string, so a string landing in a typed
column is not drift — values that do not parse are counted by coercion and caught by expectations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Landed types that may legitimately carry a declared type (e.g. epoch integers for timestamps).
COMPATIBLE_LANDED_TYPES = {
    "string": {"string"},
    "integer": {"integer", "string"},
    "float": {"float", "integer", "string"},
    "boolean": {"boolean", "string"},
    "timestamp": {"timestamp", "date", "string", "integer", "float"},
    "date": {"date", "timestamp", "string"},
}
_TYPE_PATTERNS = (
    (r"^(u?int|int)\d*$|^integer$|^long$|^bigint$|^smallint$", "integer"),
    (r"^(float|double|decimal|numeric|real)", "float"),
    (r"^bool", "boolean"),
    (r"^(datetime|timestamp)", "timestamp"),
    (r"^date", "date"),
    (r"^(object|str|string|text|varchar|char|large_string|utf8|category)", "string"),
)


def normalize_type(landed: str) -> str:
    """``Int64``, ``datetime64[ns, UTC]``, ``large_string``, ``VARCHAR`` ... → the declared vocabulary;
    unknown names are returned lower-cased so they show up as a retype rather than being hidden."""
    name = str(landed).strip().lower()
    for pattern, declared in _TYPE_PATTERNS:
        if re.match(pattern, name):
            return declared
    return name


@dataclass
class SchemaDrift:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retyped: dict[str, dict[str, str]] = field(default_factory=dict)  # column → {declared, landed}

    @property
    def drifted(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        if not self.drifted:
            return "landed schema matches the declared schema"
        parts = []
        if self.added:
            parts.append(f"added: {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.retyped:
            parts.append("retyped: " + ", ".join(f"{c} {t['declared']}→{t['landed']}" for c, t in self.retyped.items()))
        return "; ".join(parts)


def compare_schemas(declared: dict[str, str], landed: dict[str, str], missing: list[str] = (), extra: list[str] = ()) -> SchemaDrift:
    """``declared``/``landed``: column → type. Lineage columns (leading underscore) are the pipeline's own.

    ``missing``/``extra`` are what coercion saw, used when a connector cannot report a landed schema."""
    # Underscore columns are the pipeline's own lineage unless the source declares them (e.g. the MQTT
    # collector's `_topic`/`_received_at`, which arrive in the landing files like any other field).
    landed = {c: t for c, t in landed.items() if not c.startswith("_") or c in declared}
    landed_names = set(landed) | set(extra)
    if not landed:
        landed_names = (set(declared) - set(missing)) | set(extra)
    added = sorted(c for c in landed_names if c not in declared and not c.startswith("_"))
    removed = sorted(c for c in declared if c not in landed_names or c in missing)
    retyped = {}
    for column, declared_type in declared.items():
        if column in landed and column not in removed:
            landed_type = normalize_type(landed[column])
            if landed_type not in COMPATIBLE_LANDED_TYPES.get(declared_type, {declared_type}):
                retyped[column] = {"declared": declared_type, "landed": landed_type}
    return SchemaDrift(added=added, removed=removed, retyped=retyped)
