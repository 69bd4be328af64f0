"""One interface for every way raw data arrives (file drops, HTTP APIs, SQL databases, MQTT).

A connector is one small class: a pydantic ``Settings`` model validated from the source's YAML
``connector:`` block, and ``fetch`` returning the landed records of one partition. Records keep the
values as they arrived (no type coercion: that is the raw asset's job, where parse failures are
counted per column) plus lineage columns; anything that cannot be parsed into a record at all is
returned as a reject with file, line and reason so it reaches the quarantine zone instead of vanishing.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

if TYPE_CHECKING:  # tenacity is imported by the fetching step, not at definitions load
    from tenacity import RetryCallState, Retrying

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
    # Declared column → type (``json``, ``decimal(20, 4)``, ...): lets a connector hand a nested value
    # over whole or keep a number exact instead of guessing from the payload.
    column_types: dict[str, str] = field(default_factory=dict)

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """Half-open UTC window [start, end) of the partition, used by HTTP/SQL parameters."""
        if not self.partition_key:
            return None
        start = datetime.combine(date.fromisoformat(self.partition_key), datetime.min.time(), tzinfo=UTC)
        return start, start + timedelta(days=1)


@dataclass
class FetchResult:
    records: pd.DataFrame  # landed values + lineage columns
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECT_COLUMNS)))
    inputs: list[dict[str, Any]] = field(default_factory=list)  # per file/page: path, bytes, rows, etag/mtime
    landed_schema: dict[str, str] = field(default_factory=dict)  # column → type as it arrived (for drift)
    # Why nothing arrived (e.g. "no rows in the partition window ..."), else None. A zero-row partition is
    # an outcome of its own: ``landed_schema`` stays empty, so it can never read as every column drifting.
    empty: str | None = None
    # The inputs are JSON objects (JSON Lines files, API pages, MQTT payloads): a key absent from every
    # object is how JSON says "no value", so only a required column's absence is drift. CSV headers,
    # Parquet schemas and SQL result sets name every column whether or not it holds a value.
    keyed_records: bool = False


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


class ConnectorTimeoutError(ConnectorError):
    """The remote side did not answer within a configured timeout (the message names the setting)."""


CONNECTORS: dict[str, type[Connector]] = {}


def register_connector(cls: type[Connector]) -> type[Connector]:
    CONNECTORS[cls.type] = cls
    return cls


def build_connector(settings: ConnectorSettings) -> Connector:
    return CONNECTORS[settings.type](settings)


def parse_connector_settings(block: Any) -> ConnectorSettings:
    """Validate a ``connector:`` block as the union of every registered connector's Settings,
    discriminated by ``type``: pydantic picks the model from the tag, so errors speak of that model's
    fields only. Raises pydantic's ``ValidationError``; a missing or unknown ``type`` is an error of
    kind ``union_tag_not_found`` / ``union_tag_invalid``, listing the registered types."""
    return _settings_adapter(tuple(CONNECTORS.values())).validate_python(block)


@lru_cache(maxsize=4)
def _settings_adapter(connectors: tuple[type[Connector], ...]) -> TypeAdapter[ConnectorSettings]:
    # Keyed by the registered classes, so a connector registered later gets a fresh adapter.
    settings: Any = Union[tuple(cls.Settings for cls in connectors)]  # noqa: UP007 — built at run time
    return TypeAdapter(Annotated[settings, Field(discriminator="type")])


# -- durations and retries, shared by the pulled connectors (HTTP, SQL) --------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``10s``, ``500ms``, ``5m``, ``1h`` or a bare number of seconds → seconds (float)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; write e.g. 10s, 500ms, 5m or 1h")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
"""A duration setting: YAML says ``10s`` / ``5m``; the model holds seconds."""


def seconds_text(seconds: float) -> str:
    """How a duration setting is quoted back in messages: ``10s``, ``0.5s``."""
    return f"{seconds:g}s"


def transient_retries(retries: int, base: float, cap: float, transient: Callable[[BaseException], bool]) -> Retrying:
    """The retry policy of the pulled connectors (HTTP, SQL), built on tenacity.

    ``retries + 1`` attempts in all; only exceptions ``transient`` accepts are retried (anything else
    propagates at once); the last transient one is re-raised as it is, so the connector words the final
    error. Between attempts: the server's ``Retry-After`` when the failure carries one (a
    ``retry_after`` attribute, in seconds), else exponential backoff with full jitter — so many clients
    do not retry in step — both capped at ``cap`` seconds. Call it as ``policy(fn, *args)``;
    ``policy.statistics["attempt_number"]`` then says how many attempts were made.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    backoff = wait_random_exponential(multiplier=base, max=cap)

    def wait(state: RetryCallState) -> float:
        retry_after = getattr(state.outcome.exception() if state.outcome else None, "retry_after", None)
        return min(retry_after, cap) if retry_after is not None else backoff(state)

    return Retrying(stop=stop_after_attempt(retries + 1), wait=wait, retry=retry_if_exception(transient), reraise=True)


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


_DECIMAL_TYPE = re.compile(r"^\s*decimal\b", re.IGNORECASE)
_WHOLE_TYPE = re.compile(r"^\s*(json|struct)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RecordShape:
    """How one JSON object becomes one landed record, given the declared columns.

    Like ``flatten_record`` (one level, ``customer.id`` → ``customer__id``), except where the source
    declares otherwise: a ``json``/``struct`` column keeps its nested object or list as one value (not
    flattened into undeclared columns); a ``null`` wrapper whose children are declared flattened
    (``address`` null beside a declared ``address__city``) lands as null children, not as a new column;
    a ``decimal(p, s)`` column keeps the number exact — the body is then parsed with ``Decimal`` for
    every JSON number (``exact_numbers``) and numbers outside exact columns go back to ``float``.
    """

    separator: str = "__"
    whole: frozenset[str] = frozenset()
    exact: frozenset[str] = frozenset()
    parents: frozenset[str] = frozenset()

    @classmethod
    def declared(cls, column_types: dict[str, str], separator: str = "__") -> RecordShape:
        parents = {name.split(separator, 1)[0] for name in column_types if separator in name} - set(column_types)
        return cls(
            separator=separator,
            whole=frozenset(c for c, t in column_types.items() if _WHOLE_TYPE.match(str(t))),
            exact=frozenset(c for c, t in column_types.items() if _DECIMAL_TYPE.match(str(t))),
            parents=frozenset(parents),
        )

    @property
    def exact_numbers(self) -> bool:
        """Parse JSON numbers as ``Decimal`` (only when a declared column needs them exact)."""
        return bool(self.exact)

    def record(self, item: dict[str, Any]) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for key, value in item.items():
            if key in self.whole:
                flat[key] = self._plain(value)
            elif isinstance(value, dict):
                for inner_key, inner in value.items():
                    name = f"{key}{self.separator}{inner_key}"
                    flat[name] = self._leaf(name, inner)
            elif value is None and key in self.parents:
                continue  # a null wrapper object: its declared children are null, not a new column
            else:
                flat[key] = self._leaf(key, value)
        return flat

    def _leaf(self, name: str, value: Any) -> Any:
        if name in self.exact:
            # ints become Decimal too, so the column is one type; strings ("12.30") stay exact text
            return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(value, (dict, list)):
            return json.dumps(self._plain(value), ensure_ascii=False, sort_keys=True)
        return self._plain(value)

    def _plain(self, value: Any) -> Any:
        if not self.exact:
            return value
        if isinstance(value, Decimal):
            return float(value)  # correctly rounded: the same float json.loads would have produced
        if isinstance(value, dict):
            return {k: self._plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._plain(v) for v in value]
        return value


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
    """Column → landed type of native values (JSON, SQL driver), inferred over every row in C.

    Nested objects/lists kept whole (declared ``json``) land as ``json``."""
    return {str(column): _landed_type(df[column]) for column in df.columns if column not in exclude}


def _landed_type(values: pd.Series) -> str:
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "mixed" and all(isinstance(v, (dict, list)) or v is None or v != v for v in values):
        return "json"
    return _INFERRED_TO_LANDED.get(inferred, "string")
