"""Missing values: ``impute`` fills them where a stand-in is acceptable; ``drop_if_null`` removes rows
whose required values are missing (with the column named, so the quarantine says what to fix upstream).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from lepton_pipelines.cleaning.base import CleaningRule, Replaced, RuleConfig, RuleOutcome, TableInfo, register_rule
from lepton_pipelines.cleaning.support import (
    NUMERIC_TYPES,
    column_problems,
    number,
    removed_rows,
    require_columns,
    show,
    survivors,
    with_category,
)


@register_rule
class Impute(CleaningRule):
    """Fill nulls with a constant, the column's mean/median, or the previous reading (``ffill``).

    ``ffill`` walks rows in event-time order (frame order when the table has none), within each
    ``group_by`` group — a device's last temperature, never its neighbour's. Mean/median of an integer
    column are rounded so the column stays integer. An all-null column has no statistic; it stays null.
    """

    name: ClassVar[str] = "impute"

    class Config(RuleConfig):
        rule: Literal["impute"] = "impute"
        columns: list[str] = Field(min_length=1)
        strategy: Literal["constant", "mean", "median", "ffill"]
        value: Any = None  # for strategy: constant
        group_by: list[str] = Field(default_factory=list)  # for strategy: ffill

        @model_validator(mode="after")
        def _options_match_strategy(self) -> Impute.Config:
            if self.strategy == "constant" and self.value is None:
                raise ValueError("strategy constant needs `value:`")
            if self.strategy != "constant" and self.value is not None:
                raise ValueError(f"`value:` is only used by strategy constant (strategy is {self.strategy})")
            if self.strategy != "ffill" and self.group_by:
                raise ValueError(f"`group_by:` is only used by strategy ffill (strategy is {self.strategy})")
            return self

    config: Config

    def validate_against(self, table: TableInfo) -> list[str]:
        strategy = self.config.strategy
        allowed = NUMERIC_TYPES if strategy in ("mean", "median") else None
        problems = column_problems(table, self.config.columns, "columns", allowed)
        problems += column_problems(table, self.config.group_by, "group_by")
        if strategy == "constant":
            for name in self.config.columns:
                column = table.column(name)
                if column is not None and not _constant_fits(self.config.value, column.type):
                    problems.append(f"value: {self.config.value!r} does not fit {column.type} column {name!r}")
        return problems

    @property
    def takes_alive_mask(self) -> bool:
        return self.config.strategy == "constant"  # statistics and ffill must only see the kept rows

    def apply(self, df: pd.DataFrame, alive: np.ndarray | None = None) -> RuleOutcome:
        columns, strategy = self.config.columns, self.config.strategy
        if alive is not None and strategy != "constant":
            raise ValueError(f"impute {strategy}: its statistics need the filtered frame, not an `alive` mask")
        order_by = self.table.event_time if self.table.event_time in df.columns else None
        require_columns(df, [*columns, *self.config.group_by], self.name)
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        filled: dict[str, int] = {}
        still_missing: dict[str, int] = {}
        statistics: dict[str, Any] = {}
        lineage: dict[str, str] = {}
        replaced: dict[str, Replaced] = {}
        for column in columns:
            before = df[column]
            if strategy == "ffill":
                after = _forward_fill(df, column, self.config.group_by, order_by)
                scope = f" within {', '.join(self.config.group_by)}" if self.config.group_by else ""
                lineage[column] = f"imputed: forward fill{scope} ordered by {order_by or 'landing order'}"
            else:
                fill = self._fill_value(before)
                statistics[column] = number(fill) if strategy != "constant" else self.config.value
                after = with_category(before, fill).fillna(fill) if fill is not None else before
                lineage[column] = f"imputed: {strategy}" + (f" ({show(fill)})" if fill is not None else "")
            df[column] = after
            was_missing, is_missing = before.isna().to_numpy(), after.isna().to_numpy()
            if alive is not None:  # removed rows are filled too (harmlessly) but not counted
                was_missing, is_missing = was_missing & alive, is_missing & alive
            filled[column] = int(was_missing.sum() - is_missing.sum())
            still_missing[column] = int(is_missing.sum())
            now_filled = was_missing & ~is_missing
            if now_filled.any():
                positions = np.flatnonzero(now_filled)
                replaced[column] = Replaced(positions, before.iloc[positions], "filled")
        report: dict[str, Any] = {"strategy": strategy, "filled": filled, "still_missing": still_missing}
        if statistics:
            report["fill_values"] = statistics
        return RuleOutcome(frame=df, report=report, lineage=lineage, replaced=replaced)

    def _fill_value(self, values: pd.Series) -> Any:
        if self.config.strategy == "constant":
            if pd.api.types.is_datetime64_any_dtype(values.dtype):
                stamp = pd.Timestamp(self.config.value)
                tz = getattr(values.dtype, "tz", None)
                return stamp.tz_localize(tz) if tz is not None and stamp.tzinfo is None else stamp
            return self.config.value
        statistic = values.mean() if self.config.strategy == "mean" else values.median()
        if pd.isna(statistic):
            return None
        return int(round(float(statistic))) if pd.api.types.is_integer_dtype(values.dtype) else float(statistic)


def _forward_fill(df: pd.DataFrame, column: str, group_by: list[str], order_by: str | None) -> pd.Series:
    """Forward fill in event-time order within groups, returned in the frame's own row order."""
    work = df[[*dict.fromkeys([column, *group_by, *([order_by] if order_by else [])])]].reset_index(drop=True)
    if order_by:  # stable: rows with equal event times keep their landing order
        work = work.sort_values(order_by, kind="stable", na_position="last")
    if group_by:
        ordered = work.groupby(group_by, dropna=False, sort=False)[column].ffill()
    else:
        ordered = work[column].ffill()
    positional = ordered.sort_index()  # index is the original row position
    return pd.Series(positional.to_numpy(), index=df.index, name=column).astype(df[column].dtype)


def _constant_fits(value: Any, column_type: str) -> bool:
    if column_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if column_type == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if column_type == "boolean":
        return isinstance(value, bool)
    if column_type in ("timestamp", "date"):
        try:
            pd.Timestamp(value)
        except (TypeError, ValueError):
            return False
        return isinstance(value, str)
    return isinstance(value, str)


@register_rule
class DropIfNull(CleaningRule):
    """Remove rows missing a required value. Default columns: the primary key and non-nullable columns."""

    name: ClassVar[str] = "drop_if_null"

    class Config(RuleConfig):
        rule: Literal["drop_if_null"] = "drop_if_null"
        columns: list[str] | None = Field(default=None, min_length=1)

    config: Config

    @property
    def columns(self) -> list[str]:
        if self.config.columns:
            return self.config.columns
        required = [*self.table.primary_key, *(c.name for c in self.table.columns if not c.nullable)]
        return list(dict.fromkeys(required))

    def validate_against(self, table: TableInfo) -> list[str]:
        if not self.columns:
            return [f"columns: {table.source!r} has no primary key or non-nullable columns; list the required columns"]
        return column_problems(table, self.columns, "columns")

    @property
    def takes_alive_mask(self) -> bool:
        return True

    def apply(self, df: pd.DataFrame, alive: np.ndarray | None = None) -> RuleOutcome:
        columns = self.columns
        require_columns(df, columns, self.name)
        missing = np.column_stack([df[column].isna().to_numpy() for column in columns])
        if alive is not None:
            missing &= alive[:, None]
        counts = {column: int(n) for column, n in zip(columns, missing.sum(axis=0), strict=True)}
        any_missing = missing.any(axis=1)
        # Reasons are built for the dropped rows only (a million-row string mask per column costs seconds).
        dropped = missing[any_missing]
        missing_names = pd.Series("", index=df.index[any_missing], dtype="str")
        named = np.zeros(len(dropped), dtype=bool)
        for column, is_missing in zip(columns, dropped.T, strict=True):
            missing_names = missing_names.mask(is_missing & named, missing_names + ", " + column)
            missing_names = missing_names.mask(is_missing & ~named, column)
            named |= is_missing
        reason = "missing required value in " + missing_names
        removed = removed_rows(df, any_missing, reason, self.name)
        report = {"columns": columns, "rows_dropped": int(any_missing.sum()), "nulls": counts}
        frame, keep = survivors(df, any_missing, alive)
        return RuleOutcome(frame=frame, removed=removed, report=report, keep=keep)
