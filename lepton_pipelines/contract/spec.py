"""The source registry schema: one YAML file declares one source.

Validated with pydantic so that a typo in any field is an error naming the field and what is allowed.
Connector settings, cleaning rules and expectations are validated against their own registries
(``connectors.CONNECTORS``, ``cleaning.CLEANING_RULES``, GX's expectation classes), so adding one of
those never means editing this file.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
COLUMN_TYPES = ("string", "integer", "float", "boolean", "timestamp", "date", "json", "decimal(p, s)")
DECIMAL_TYPE = re.compile(r"^decimal\(\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)$")
# Parquet/Arrow decimal128 holds at most 38 significant digits.
MAX_DECIMAL_PRECISION = 38
EPOCH_FORMATS = {"epoch_s": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}
ISO_FORMAT = "iso8601"
ParseErrorPolicy = Literal["quarantine", "null", "fail"]
# Hive-style partition folders are named after the partition key; a data column of the same name is
# replaced by the folder value in DuckDB and breaks pyarrow.dataset's schema merge.
PARTITION_COLUMN = "date"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def decimal_precision_scale(column_type: str) -> tuple[int, int] | None:
    match = DECIMAL_TYPE.match(column_type)
    return (int(match.group(1)), int(match.group(2))) if match else None


def type_kind(column_type: str) -> str:
    """``decimal(20, 4)`` → ``decimal``; every other type is its own kind."""
    return "decimal" if column_type.startswith("decimal") else column_type


class ColumnSpec(_Strict):
    """One declared column: the contract a landed value must meet to be certified.

    Parsing is never guessed: a timestamp is ISO-8601 unless ``format`` says otherwise (strftime patterns,
    ``iso8601``, ``epoch_s``/``epoch_ms``/``epoch_us``); numbers use ``.`` and no thousands separator unless
    ``decimal``/``thousands`` say otherwise; booleans accept ``true_values``/``false_values``. A value that
    does not parse is handled by ``on_parse_error`` (default: the source's ``governance.on_parse_error``).
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: str
    nullable: bool = True
    description: str = ""
    allowed_values: list[Any] | None = None  # documentation + used by governance in-set checks
    from_: str | None = Field(default=None, alias="from", min_length=1)  # landed column name, when it differs
    format: str | list[str] | None = None
    decimal: str | None = Field(default=None, min_length=1, max_length=1)
    thousands: str | None = Field(default=None, min_length=1, max_length=1)
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    timezone: str | None = None
    on_parse_error: ParseErrorPolicy | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        text = str(value).strip().lower().replace(" ", "")
        decimal = DECIMAL_TYPE.match(text)
        if decimal:
            precision, scale = int(decimal.group(1)), int(decimal.group(2))
            if not 1 <= precision <= MAX_DECIMAL_PRECISION or scale > precision:
                raise ValueError(
                    f"decimal({precision}, {scale}): precision must be 1-{MAX_DECIMAL_PRECISION} and scale at most "
                    "the precision"
                )
            return f"decimal({precision},{scale})"
        if text not in COLUMN_TYPES:
            raise ValueError(f"{value!r} is not a column type; allowed: {', '.join(COLUMN_TYPES)}")
        return text

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)"
                ) from None
        return value

    @model_validator(mode="after")
    def _options_fit_type(self) -> ColumnSpec:
        kind = type_kind(self.type)
        misplaced = []
        if self.format is not None and kind not in ("timestamp", "date"):
            misplaced.append("format")
        if self.timezone is not None and kind != "timestamp":
            misplaced.append("timezone")
        for option in ("decimal", "thousands"):
            if getattr(self, option) is not None and kind not in ("integer", "float", "decimal"):
                misplaced.append(option)
        for option in ("true_values", "false_values"):
            if getattr(self, option) is not None and kind != "boolean":
                misplaced.append(option)
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)}: not an option of a {self.type} column")
        if self.decimal is not None and self.decimal == self.thousands:
            raise ValueError("decimal and thousands must be different characters")
        for pattern in self.formats:
            if pattern not in EPOCH_FORMATS and pattern != ISO_FORMAT and "%" not in pattern:
                raise ValueError(
                    f"format {pattern!r}: use strftime patterns (e.g. '%d/%m/%Y', '%b %d %Y'), "
                    f"'{ISO_FORMAT}', or one of {', '.join(EPOCH_FORMATS)}"
                )
            if kind == "date" and pattern in EPOCH_FORMATS:
                raise ValueError(f"format {pattern!r}: epoch formats are for timestamp columns")
        return self

    @property
    def formats(self) -> tuple[str, ...]:
        if self.format is None:
            return ()
        return (self.format,) if isinstance(self.format, str) else tuple(self.format)

    @property
    def landed_name(self) -> str:
        return self.from_ or self.name


class ExpectationSpec(_Strict):
    """Any GX 1.x expectation, by its snake_case name (``expect_column_values_to_be_between``)."""

    expectation: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"
    description: str = ""
    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")  # check name in the UI

    @property
    def check_name(self) -> str:
        if self.name:
            return self.name
        column = self.kwargs.get("column") or "_".join(self.kwargs.get("column_list", []) or [])
        suffix = self.expectation.removeprefix("expect_")
        return re.sub(r"[^a-z0-9_]+", "_", f"{column}__{suffix}" if column else suffix.lower()).strip("_")


def _duration(text: str) -> timedelta:
    value, unit = float(text[:-1].strip()), text[-1]
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: value})


DURATION_PATTERN = r"^\d+(\.\d+)?\s*[smhd]$"


class LateArrivalPolicy(_Strict):
    """Rows whose ``event_time`` falls outside their partition's day by more than ``tolerance``:
    ``quarantine`` removes them (reason names the event time and the partition), ``flag`` keeps them with
    ``_late_arrival`` set and makes the ``late_arrival`` check warn."""

    tolerance: str = Field(default="1d", pattern=DURATION_PATTERN)
    action: Literal["quarantine", "flag"] = "flag"

    @property
    def tolerance_timedelta(self) -> timedelta:
        return _duration(self.tolerance)


class GovernancePolicy(_Strict):
    row_failures: Literal["quarantine", "block"] = "quarantine"  # what row-level expectation failures do
    schema_drift: Literal["warn", "error"] = "warn"
    # What a landed value that does not parse as its column's declared type does (per column: on_parse_error).
    on_parse_error: ParseErrorPolicy = "quarantine"
    # Row-loss guard: governed must keep at least this share of the landed records (superseded duplicates
    # aside), and never zero of a non-empty landing.
    min_retained_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    # A landed file (or SQL/HTTP window) without a single record.
    empty_input: Literal["fail", "warn", "ok"] = "warn"
    late_arrival: LateArrivalPolicy = Field(default_factory=LateArrivalPolicy)


class FreshnessSpec(_Strict):
    """A source is stale when its newest data is older than ``max_lag`` (e.g. ``26h``, ``90m``, ``2d``)."""

    max_lag: str = Field(pattern=DURATION_PATTERN)

    @property
    def max_lag_timedelta(self) -> timedelta:
        return _duration(self.max_lag)


class SourceSpec(_Strict):
    name: str = Field(pattern=SOURCE_NAME_PATTERN)
    description: str
    owner: str
    tags: dict[str, str] = Field(default_factory=dict)
    connector: dict[str, Any]  # validated against the connector type's own Settings model
    schema_: list[ColumnSpec] = Field(alias="schema", min_length=1)
    primary_key: list[str] = Field(default_factory=list)
    event_time: str | None = None
    partitioning: Literal["daily", "none"] = "daily"
    start_date: str = Field(default="2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")

    @field_validator("start_date", mode="before")
    @classmethod
    def _unquoted_date(cls, value: Any) -> Any:
        # YAML reads an unquoted 2013-01-01 as a date; it means the same day, so take it as written.
        return value.isoformat() if isinstance(value, date) else value

    cleaning: list[dict[str, Any]] = Field(default_factory=list)  # validated against cleaning rule Configs
    expectations: list[ExpectationSpec] = Field(default_factory=list)
    governance: GovernancePolicy = Field(default_factory=GovernancePolicy)
    freshness: FreshnessSpec | None = None
    schedule: str | None = Field(
        default="0 2 * * *",
        pattern=r"^\S+ \S+ \S+ \S+ \S+$",
        description="cron of the batch schedule (daily sources: `M H * * *`, run for the previous day); null: none",
    )

    # Filled by the loader: where the spec came from, for error messages and the catalog.
    origin: str = Field(default="", exclude=True)

    @field_validator("tags")
    @classmethod
    def _tags_are_short(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if not re.match(r"^[A-Za-z0-9_.\-/]{1,63}$", key) or len(str(value)) > 63:
                raise ValueError(f"tag {key!r}: keys are 1-63 of A-Z a-z 0-9 _ . - /, values at most 63 chars")
        return tags

    @model_validator(mode="after")
    def _columns_referenced_exist(self) -> SourceSpec:
        names = [c.name for c in self.schema_]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema: column(s) declared twice: {', '.join(dupes)}")
        landed = [c.landed_name for c in self.schema_]
        twice = sorted({n for n in landed if landed.count(n) > 1})
        if twice:
            raise ValueError(f"schema: landed column(s) mapped twice (name/from): {', '.join(twice)}")
        if self.is_partitioned and PARTITION_COLUMN in names:
            raise ValueError(
                f"schema[{PARTITION_COLUMN}]: a daily source's tables live in `{PARTITION_COLUMN}=YYYY-MM-DD` "
                "folders, so a "
                f"column named `{PARTITION_COLUMN}` collides with the partition column in DuckDB, Spark, Athena and "
                f"pyarrow.dataset; declare it under another name and map the landed column, e.g. "
                f"`{{name: trade_date, from: {PARTITION_COLUMN}, type: date}}`"
            )
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"primary_key: column {key!r} is not in schema (columns: {', '.join(names)})")
        if self.event_time and self.event_time not in names:
            raise ValueError(f"event_time: column {self.event_time!r} is not in schema (columns: {', '.join(names)})")
        if self.event_time and self.column(self.event_time).type not in ("timestamp", "date"):
            raise ValueError(f"event_time: column {self.event_time!r} must be of type timestamp or date")
        if self.schedule and self.is_partitioned and not re.match(r"^\d{1,2} \d{1,2} \* \* \*$", self.schedule):
            raise ValueError(f"schedule: a daily source runs once a day, `M H * * *` (got {self.schedule!r})")
        return self

    @property
    def columns(self) -> list[ColumnSpec]:
        return self.schema_

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.schema_ if c.name == name)

    def parse_error_policy(self, column: ColumnSpec) -> str:
        return column.on_parse_error or self.governance.on_parse_error

    @property
    def is_partitioned(self) -> bool:
        return self.partitioning == "daily"
