"""Text tidying rules: ``trim``, ``normalize_case``, ``replace_values``.

They run before deduplication and range checks so that ``" Berlin"`` and ``"berlin"`` are the same key and
sentinels such as ``"N/A"`` or ``-999`` become real nulls that ``impute``/``drop_if_null`` can see.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import Field

from lepton_pipelines.cleaning.base import CleaningRule, RuleConfig, RuleOutcome, TableInfo, register_rule
from lepton_pipelines.cleaning.support import NUMERIC_TYPES, column_problems, map_text, require_columns, with_category


def _string_columns(table: TableInfo) -> list[str]:
    return [c.name for c in table.columns if c.type == "string"]


@register_rule
class Trim(CleaningRule):
    """Strip surrounding whitespace; text that is only whitespace becomes null (it carries no value)."""

    name: ClassVar[str] = "trim"

    class Config(RuleConfig):
        rule: Literal["trim"] = "trim"
        columns: list[str] | None = Field(default=None, min_length=1)  # default: every declared string column
        empty_to_null: bool = True

    config: Config

    @property
    def columns(self) -> list[str]:
        return self.config.columns or _string_columns(self.table)

    def validate_against(self, table: TableInfo) -> list[str]:
        return column_problems(table, self.config.columns or [], "columns", ("string",))

    def apply(self, df: pd.DataFrame) -> RuleOutcome:
        columns = [c for c in self.columns if c in df.columns] if self.config.columns is None else self.columns
        require_columns(df, columns, self.name)
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        changed: dict[str, int] = {}
        emptied: dict[str, int] = {}
        lineage: dict[str, str] = {}
        empty_to_null = self.config.empty_to_null
        for column in columns:
            values = df[column]
            stripped, trimmed = map_text(values, lambda text: text.str.strip())
            blank = (stripped == "").fillna(False).to_numpy(dtype=bool)
            changed[column] = int(trimmed.sum())
            if empty_to_null:
                emptied[column] = int(blank.sum())
                if emptied[column]:
                    stripped, _ = map_text(stripped, lambda text: text.mask(text == ""))
            if changed[column] or emptied.get(column) or stripped.dtype != values.dtype:
                df[column] = stripped  # an untouched column keeps its array: no copy of clean text
            lineage[column] = "trimmed whitespace" + ("; blank → null" if self.config.empty_to_null else "")
        report: dict[str, Any] = {"trimmed": changed}
        if self.config.empty_to_null:
            report["blank_to_null"] = emptied
        return RuleOutcome(frame=df, report=report, lineage=lineage)


@register_rule
class NormalizeCase(CleaningRule):
    """Make categorical text comparable (``Berlin``/``BERLIN``) before it is grouped or deduplicated."""

    name: ClassVar[str] = "normalize_case"

    class Config(RuleConfig):
        rule: Literal["normalize_case"] = "normalize_case"
        columns: list[str] = Field(min_length=1)
        case: Literal["lower", "upper", "title"] = "lower"

    config: Config

    def validate_against(self, table: TableInfo) -> list[str]:
        return column_problems(table, self.config.columns, "columns", ("string",))

    def apply(self, df: pd.DataFrame) -> RuleOutcome:
        require_columns(df, self.config.columns, self.name)
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        changed: dict[str, int] = {}
        case = self.config.case
        for column in self.config.columns:
            converted, differs = map_text(df[column], lambda text: getattr(text.str, case)())
            changed[column] = int(differs.sum())
            if changed[column] or converted.dtype != df[column].dtype:
                df[column] = converted  # an untouched column keeps its array
        return RuleOutcome(
            frame=df,
            report={"case": self.config.case, "changed": changed},
            lineage={c: f"case normalized: {self.config.case}" for c in self.config.columns},
        )


@register_rule
class ReplaceValues(CleaningRule):
    """Map sentinel values per column, e.g. ``{"N/A": null}`` or ``{-999: null}``; null means missing."""

    name: ClassVar[str] = "replace_values"

    class Config(RuleConfig):
        rule: Literal["replace_values"] = "replace_values"
        values: dict[str, dict[Any, Any]] = Field(min_length=1)  # column → {old: new}

    config: Config

    def validate_against(self, table: TableInfo) -> list[str]:
        problems = column_problems(table, self.config.values, "values")
        for name, mapping in self.config.values.items():
            column = table.column(name)
            if column is None:
                continue
            for old, new in mapping.items():
                for role, value in (("value", old), ("replacement", new)):
                    if value is not None and not _fits(value, column.type):
                        problems.append(f"values.{name}: {role} {value!r} does not fit {column.type} column {name!r}")
        return problems

    def apply(self, df: pd.DataFrame) -> RuleOutcome:
        require_columns(df, self.config.values, self.name)
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        replaced: dict[str, int] = {}
        for column, mapping in self.config.values.items():
            series = df[column]
            hits = pd.Series(False, index=df.index)
            for old, new in mapping.items():
                match = (series == old).fillna(False).astype(bool) & ~hits
                hits |= match
                series = series.mask(match) if new is None else with_category(series, new).mask(match, new)
            replaced[column] = int(hits.sum())
            df[column] = series
        lineage = {
            column: "replaced "
            + ", ".join(f"{old!r} → {'null' if new is None else repr(new)}" for old, new in mapping.items())
            for column, mapping in self.config.values.items()
        }
        return RuleOutcome(frame=df, report={"replaced": replaced}, lineage=lineage)


def _fits(value: Any, column_type: str) -> bool:
    if column_type == "string":
        return isinstance(value, str)
    if column_type in NUMERIC_TYPES:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (column_type == "float" or float(value).is_integer())
        )
    if column_type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)  # timestamp/date sentinels are written as ISO text
