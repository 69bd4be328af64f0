"""The model card's feature schema, and request validation against it.

Validation happens before pandas sees a row so a client gets an answer that names the row and
field and says what is allowed, instead of a numpy traceback from deep inside the estimator.
Stdlib only: this module runs inside the image and in the unit tests without the model libraries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALLOWED_TYPES = ("float", "integer", "string", "boolean")
# Validation keeps going after the first problem so one round trip shows a client everything
# wrong with a batch; this cap keeps the error body small for a batch that is all wrong.
MAX_REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class Problem:
    row: int | None
    field: str | None
    message: str

    def describe(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


class InvalidRequest(Exception):
    """A client error: ``status`` is the HTTP status, ``problems`` the itemised reasons."""

    def __init__(self, status: int, problems: list[Problem]):
        self.status = status
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0].describe() + more)


def parse_feature_schema(raw: Any) -> list[Feature]:
    """Read ``feature_schema`` from a model card; raise ValueError naming the bad entry."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("model card 'feature_schema' must be a non-empty list of {name, type}")
    features: list[Feature] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"model card feature_schema[{index}] needs a non-empty string 'name'")
        if entry.get("type") not in ALLOWED_TYPES:
            raise ValueError(
                f"model card feature_schema[{index}] ({entry['name']!r}) has type {entry.get('type')!r};"
                f" allowed: {', '.join(ALLOWED_TYPES)}"
            )
        if entry["name"] in seen:
            raise ValueError(f"model card feature_schema lists {entry['name']!r} twice")
        seen.add(entry["name"])
        features.append(Feature(entry["name"], entry["type"], bool(entry.get("nullable", False))))
    return features


def _type_problem(feature: Feature, value: Any) -> str | None:
    """Return why ``value`` does not fit ``feature``, or None when it fits."""
    if value is None:
        return None if feature.nullable else f"is null; expected {feature.type} (this field is not nullable)"
    # bool is a subclass of int in Python: JSON true must not pass as a number.
    if feature.type == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif feature.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif feature.type == "string":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, bool)
    if ok:
        return None
    return f"expected {feature.type}, got {_json_type(value)} {_preview(value)}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def extract_rows(payload: Any, max_rows: int) -> list[Any]:
    """Accept ``{"rows": [...]}`` (documented) or a bare list of row objects."""
    rows = payload.get("rows") if isinstance(payload, dict) else payload
    if isinstance(payload, dict) and "rows" not in payload:
        raise InvalidRequest(400, [Problem(None, "rows", 'body must be {"rows": [{feature: value, ...}, ...]}')])
    if not isinstance(rows, list):
        raise InvalidRequest(400, [Problem(None, "rows", f"must be a list of row objects, got {_json_type(rows)}")])
    if not rows:
        raise InvalidRequest(400, [Problem(None, "rows", "is empty; send at least one row")])
    if len(rows) > max_rows:
        raise InvalidRequest(
            413, [Problem(None, "rows", f"has {len(rows)} rows; at most {max_rows} per request (split the batch)")]
        )
    return rows


def validate_rows(rows: list[Any], features: list[Feature]) -> None:
    """Raise InvalidRequest(422) listing every missing, unknown or mistyped field (capped)."""
    allowed = {feature.name for feature in features}
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        if len(problems) >= MAX_REPORTED_PROBLEMS:
            break
        if not isinstance(row, dict):
            problems.append(Problem(index, None, f"must be an object of feature values, got {_json_type(row)}"))
            continue
        for feature in features:
            if feature.name not in row:
                problems.append(Problem(index, feature.name, f"is missing; expected {feature.type}"))
                continue
            reason = _type_problem(feature, row[feature.name])
            if reason:
                problems.append(Problem(index, feature.name, reason))
        for name in row:
            if name not in allowed:
                problems.append(Problem(index, name, f"is not a model feature; allowed: {', '.join(sorted(allowed))}"))
    if problems:
        raise InvalidRequest(422, problems[:MAX_REPORTED_PROBLEMS])
