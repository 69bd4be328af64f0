"""One interface for every way raw data arrives (file drops, HTTP APIs, SQL databases, MQTT).

A connector is one small class: a pydantic ``Settings`` model validated from the source's YAML
``connector:`` block, and ``fetch`` returning the landed records of one partition. Records keep the
values as they arrived (no type coercion: that is the raw asset's job, where parse failures are
counted per column) plus lineage columns; anything that cannot be parsed into a record at all is
returned as a reject with file, line and reason so it reaches the quarantine zone instead of vanishing.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

# Lineage columns every connector adds to each record.
SOURCE_FILE = "_source_file"  # file path, URL (with page) or "sql" — where the record came from
SOURCE_LINE = "_source_line"  # 1-based line / record number inside that file or response
LINEAGE_COLUMNS = (SOURCE_FILE, SOURCE_LINE)

# Columns of the rejects frame.
REJECT_COLUMNS = ("source_file", "source_line", "reason", "raw")


class ConnectorSettings(BaseModel):
    """Base of every connector's settings; unknown keys are errors, so typos surface at load time."""

    model_config = ConfigDict(extra="forbid")
    type: str


@dataclass(frozen=True)
class FetchRequest:
    """One partition's worth of work. ``partition_key`` is ``YYYY-MM-DD`` for daily sources, else None."""

    source: str
    partition_key: str | None
    lake: Any  # lepton_pipelines.lake.store.Lake — typed loosely to keep connectors storage-agnostic
    columns: tuple[str, ...] = ()  # declared column names, for connectors that can project

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """Half-open UTC window [start, end) of the partition, used by HTTP/SQL parameters."""
        if not self.partition_key:
            return None
        start = datetime.combine(date.fromisoformat(self.partition_key), datetime.min.time(), tzinfo=timezone.utc)
        return start, start + timedelta(days=1)


@dataclass
class FetchResult:
    records: pd.DataFrame  # landed values + lineage columns
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECT_COLUMNS)))
    inputs: list[dict[str, Any]] = field(default_factory=list)  # per file/page: path, bytes, rows, etag/mtime
    landed_schema: dict[str, str] = field(default_factory=dict)  # column → type as it arrived (for drift)


class Connector(ABC):
    type: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]]

    def __init__(self, settings: ConnectorSettings):
        self.settings = settings

    @abstractmethod
    def fetch(self, request: FetchRequest) -> FetchResult:
        """Return the partition's records. Raise ``ConnectorError`` naming the file/URL on hard failures."""

    def landing_settings(self) -> ConnectorSettings | None:
        """File settings describing this source's files in ``<lake>/landing/<source>/``, for the landing
        sensor; None for sources that are pulled (HTTP, SQL) rather than dropped."""
        return None

    # How the landing sensor turns files into runs: "file" — one run per file version (batch drops);
    # "partition" — one run per partition and tick covering all new files (streaming micro-batches).
    landing_runs: ClassVar[str] = "file"

    def upstream_assets(self, source: str) -> list[list[str]]:
        """Asset keys that produce this source's landing data inside Dagster (e.g. an in-run drain)."""
        return []


class ConnectorError(RuntimeError):
    """A failure a person can act on: the message names the file, URL or query and what went wrong."""


CONNECTORS: dict[str, type[Connector]] = {}


def register_connector(cls: type[Connector]) -> type[Connector]:
    CONNECTORS[cls.type] = cls
    return cls


def build_connector(settings: ConnectorSettings) -> Connector:
    return CONNECTORS[settings.type](settings)


# -- shared helpers for connectors (added with the batch connectors) -------------------------------
# Landed types use the registry's column-type vocabulary so the drift check can compare them with the
# declared schema directly; anything outside it keeps its own name (e.g. ``list<int64>``, ``decimal``).


def rejects_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A rejects frame with exactly ``REJECT_COLUMNS``, even when empty."""
    return pd.DataFrame(rows, columns=list(REJECT_COLUMNS))


def merge_landed_types(left: str | None, right: str | None) -> str | None:
    """The type two landings of one column share: equal stays, integer+float widens, else string."""
    if left is None or left == right:
        return right
    if right is None:
        return left
    if {left, right} == {"integer", "float"}:
        return "float"
    return "string"


def merge_landed_schemas(schemas: list[dict[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for schema in schemas:
        for column, kind in schema.items():
            merged[column] = merge_landed_types(merged.get(column), kind) or kind
    return merged


def flatten_record(record: dict[str, Any], separator: str = "__") -> dict[str, Any]:
    """Flatten a JSON object one level: ``{"a": {"b": 1}}`` → ``{"a__b": 1}``.

    Why one level and ``__``: API payloads usually nest one wrapper object (``customer.id``), and the
    registry's column names may not contain dots, so ``customer__id`` can be declared in a schema.
    Deeper objects and lists are kept as JSON text — a landed value never gets lost or split further.
    """
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner_key, inner in value.items():
                flat[f"{key}{separator}{inner_key}"] = _json_text_if_nested(inner)
        else:
            flat[key] = _json_text_if_nested(value)
    return flat


def _json_text_if_nested(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else value


# pandas' C-level inference names → registry vocabulary (``mixed`` and friends widen to string).
_INFERRED_TO_LANDED = {
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "decimal",
    "boolean": "boolean",
    "string": "string",
    "datetime64": "timestamp",
    "datetime": "timestamp",
    "date": "date",
    "empty": "null",
}


def landed_schema_of_records(df: pd.DataFrame, exclude: tuple[str, ...] = LINEAGE_COLUMNS) -> dict[str, str]:
    """Column → landed type of native values (JSON, SQL driver), inferred over every row in C."""
    return {
        str(column): _INFERRED_TO_LANDED.get(pd.api.types.infer_dtype(df[column], skipna=True), "string")
        for column in df.columns
        if column not in exclude
    }
