"""The source registry schema: one YAML file declares one source.

Validated with pydantic so that a typo in any field is an error naming the field and what is allowed.
Connector settings, cleaning rules and expectations are validated against their own registries
(``connectors.CONNECTORS``, ``cleaning.CLEANING_RULES``, GX's expectation classes), so adding one of
those never means editing this file.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
COLUMN_TYPES = ("string", "integer", "float", "boolean", "timestamp", "date")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ColumnSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: Literal["string", "integer", "float", "boolean", "timestamp", "date"]
    nullable: bool = True
    description: str = ""
    allowed_values: list[Any] | None = None  # documentation + used by governance in-set checks


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


class GovernancePolicy(_Strict):
    row_failures: Literal["quarantine", "block"] = "quarantine"  # what row-level expectation failures do
    schema_drift: Literal["warn", "error"] = "warn"


class FreshnessSpec(_Strict):
    """A source is stale when its newest data is older than ``max_lag`` (e.g. ``26h``, ``90m``, ``2d``)."""

    max_lag: str = Field(pattern=r"^\d+(\.\d+)?\s*[smhd]$")

    @property
    def max_lag_timedelta(self) -> timedelta:
        value, unit = float(self.max_lag[:-1].strip()), self.max_lag[-1]
        return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: value})


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
    def _columns_referenced_exist(self) -> "SourceSpec":
        names = [c.name for c in self.schema_]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema: column(s) declared twice: {', '.join(dupes)}")
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

    @property
    def is_partitioned(self) -> bool:
        return self.partitioning == "daily"
