"""Numeric denoising: ``valid_range`` (physically/business-possible values) and ``outliers`` (statistical).

``valid_range`` encodes what is known to be impossible (a humidity of 140 %); ``outliers`` finds what is
unusual relative to the data itself, optionally per group (per device: a freezer's -18 °C is normal, a
living room's is not). Both can drop the row (with a reason naming value and limit), clip the value, or
— for outliers — flag it in ``<column>_outlier`` so a model or analyst decides.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from lepton_pipelines.cleaning.base import CleaningRule, Replaced, RuleConfig, RuleOutcome, TableInfo, register_rule
from lepton_pipelines.cleaning.support import (
    NUMERIC_TYPES,
    as_text,
    column_problems,
    number,
    removed_rows,
    require_columns,
    show,
    survivors,
)


@register_rule
class ValidRange(CleaningRule):
    """Values outside ``[min, max]`` (inclusive) are dropped, clipped to the limit, or set to null."""

    name: ClassVar[str] = "valid_range"

    class Config(RuleConfig):
        rule: Literal["valid_range"] = "valid_range"
        column: str
        min: int | float | None = None
        max: int | float | None = None
        action: Literal["drop", "clip", "null"] = "drop"

        @model_validator(mode="after")
        def _bounds_make_sense(self) -> ValidRange.Config:
            if self.min is None and self.max is None:
                raise ValueError("give at least one of min, max")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
            return self

    config: Config

    def validate_against(self, table: TableInfo) -> list[str]:
        problems = column_problems(table, [self.config.column], "column", NUMERIC_TYPES)
        column = table.column(self.config.column)
        if column is not None and column.type == "integer" and self.config.action == "clip":
            for field in ("min", "max"):
                bound = getattr(self.config, field)
                if bound is not None and not float(bound).is_integer():
                    problems.append(f"{field}: {bound} cannot clip integer column {column.name!r}; use a whole number")
        return problems

    @property
    def takes_alive_mask(self) -> bool:
        return True

    def apply(self, df: pd.DataFrame, alive: np.ndarray | None = None) -> RuleOutcome:
        column, low, high, action = self.config.column, self.config.min, self.config.max, self.config.action
        require_columns(df, [column], self.name)
        values = df[column]
        below = (values < low).fillna(False).to_numpy(dtype=bool) if low is not None else np.zeros(len(df), bool)
        above = (values > high).fillna(False).to_numpy(dtype=bool) if high is not None else np.zeros(len(df), bool)
        if alive is not None:  # rows removed earlier are neither counted nor removed again
            below, above = below & alive, above & alive
        interval = f"[{show(low) if low is not None else '-inf'}, {show(high) if high is not None else 'inf'}]"
        report: dict[str, Any] = {
            "column": column,
            "min": number(low),
            "max": number(high),
            "action": action,
            "below_min": int(below.sum()),
            "above_max": int(above.sum()),
        }
        outside = below | above
        if action == "drop":
            # Reasons are rendered for the removed rows only: rendering a million values costs seconds.
            limit = np.where(below[outside], f" below minimum {show(low)}", f" above maximum {show(high)}")
            reason = (
                f"{column}=" + as_text(values[outside]) + pd.Series(limit, index=values.index[outside], dtype="str")
            )
            removed = removed_rows(df, outside, reason, self.name)
            frame, keep = survivors(df, outside, alive)
            return RuleOutcome(
                frame=frame,
                removed=removed,
                report=report,
                keep=keep,
                lineage={column: f"rows outside {interval} dropped"},
            )
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        if action == "clip":
            df[column] = values.clip(lower=_fit_bound(low, values), upper=_fit_bound(high, values))
            lineage = f"clipped to {interval}"
        else:
            df[column] = values.mask(outside)
            lineage = f"values outside {interval} set to null"
        return RuleOutcome(
            frame=df,
            report=report,
            lineage={column: lineage},
            replaced=_replaced(column, values, outside, "clipped" if action == "clip" else "nulled"),
        )


@register_rule
class Outliers(CleaningRule):
    """Tukey fences (``iqr``: outside ``[Q1 - k·IQR, Q3 + k·IQR]``) or ``zscore`` (``|x - mean| > k·std``).

    Quantiles use linear interpolation (numpy's default); std is the sample std (ddof=1), so a group of
    one value has no spread and nothing in it is an outlier. Nulls are never outliers.
    """

    name: ClassVar[str] = "outliers"
    DEFAULT_THRESHOLDS: ClassVar[dict[str, float]] = {"iqr": 1.5, "zscore": 3.0}

    class Config(RuleConfig):
        rule: Literal["outliers"] = "outliers"
        column: str
        method: Literal["iqr", "zscore"] = "iqr"
        threshold: float | None = Field(default=None, gt=0)  # default 1.5 for iqr, 3.0 for zscore
        action: Literal["drop", "clip", "flag"] = "flag"
        group_by: list[str] = Field(default_factory=list)

    config: Config

    @property
    def threshold(self) -> float:
        return self.config.threshold or self.DEFAULT_THRESHOLDS[self.config.method]

    @property
    def flag_column(self) -> str:
        return f"{self.config.column}_outlier"

    def validate_against(self, table: TableInfo) -> list[str]:
        return column_problems(table, [self.config.column], "column", NUMERIC_TYPES) + column_problems(
            table, self.config.group_by, "group_by"
        )

    def apply(self, df: pd.DataFrame) -> RuleOutcome:
        column, method, group_by, k = self.config.column, self.config.method, self.config.group_by, self.threshold
        require_columns(df, [column, *group_by], self.name)
        values = df[column].astype("float64")
        lower, upper, stats = self._bounds(df, values)
        is_outlier = ((values < lower) | (values > upper)).to_numpy(dtype=bool)
        scope = f" per {', '.join(group_by)}" if group_by else ""
        description = f"{method} k={show(k)}{scope}"
        report: dict[str, Any] = {
            "column": column,
            "method": method,
            "threshold": k,
            "action": self.config.action,
            "outliers": int(is_outlier.sum()),
            **stats,
        }
        if self.config.action == "drop":
            reason = (
                f"{column}="
                + as_text(df[column])
                + f" outside {method} bounds ["
                + _bound_text(lower)
                + ", "
                + _bound_text(upper)
                + f"] (k={show(k)}{scope})"
            )
            removed = removed_rows(df, is_outlier, reason[is_outlier], self.name)
            return RuleOutcome(
                frame=df[~is_outlier],
                removed=removed,
                report=report,
                lineage={column: f"outlier rows dropped ({description})"},
            )
        df = df.copy(deep=False)  # copy-on-write: replacing columns never touches the caller's frame
        if self.config.action == "clip":
            original = df[column]
            df[column] = _clip(original, lower, upper)
            changed = is_outlier & (df[column] != original).fillna(False).to_numpy(dtype=bool)
            return RuleOutcome(
                frame=df,
                report=report,
                lineage={column: f"outliers clipped to bounds ({description})"},
                replaced=_replaced(column, original, changed, "clipped"),
            )
        df[self.flag_column] = pd.array(is_outlier, dtype="boolean")
        return RuleOutcome(
            frame=df, report=report, lineage={self.flag_column: f"flags {column} outliers ({description})"}
        )

    def _bounds(self, df: pd.DataFrame, values: pd.Series) -> tuple[Any, Any, dict[str, Any]]:
        """Lower/upper bounds (scalars, or per-row Series when grouped) and the statistics to report."""
        k, group_by = self.threshold, self.config.group_by
        if group_by:
            grouped = values.groupby([df[g] for g in group_by], dropna=False, sort=False)
            if self.config.method == "iqr":
                q1, q3 = grouped.transform("quantile", 0.25), grouped.transform("quantile", 0.75)
                lower, upper = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
            else:
                mean, std = grouped.transform("mean"), grouped.transform("std")
                lower, upper = mean - k * std, mean + k * std
            return lower, upper, {"groups": int(grouped.ngroups)}
        if self.config.method == "iqr":
            q1, q3 = values.quantile(0.25), values.quantile(0.75)
            lower, upper = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
            stats = {"q1": number(q1), "q3": number(q3), "iqr": number(q3 - q1)}
        else:
            mean, std = values.mean(), values.std()
            lower, upper = mean - k * std, mean + k * std
            stats = {"mean": number(mean), "std": number(std)}
        return lower, upper, {**stats, "lower": number(lower), "upper": number(upper)}


def _replaced(column: str, before: pd.Series, changed: np.ndarray, action: str) -> dict[str, Replaced]:
    """The ``RuleOutcome.replaced`` entry for the rows in ``changed`` (empty when nothing changed)."""
    if not changed.any():
        return {}
    positions = np.flatnonzero(changed)
    return {column: Replaced(positions, before.iloc[positions], action)}


def _fit_bound(bound: int | float | None, values: pd.Series) -> int | float | None:
    """Integer columns are clipped to whole-number limits so they stay integers."""
    if bound is None or not pd.api.types.is_integer_dtype(values.dtype):
        return bound
    return int(bound)


def _clip(values: pd.Series, lower: Any, upper: Any) -> pd.Series:
    if not pd.api.types.is_integer_dtype(values.dtype):
        return values.clip(lower=lower, upper=upper)
    # Whole-number fences inside the real ones keep the integer dtype without creating new outliers.
    clipped = values.astype("float64").clip(lower=np.ceil(lower), upper=np.floor(upper))
    return clipped.round().astype(values.dtype)


def _bound_text(bound: Any) -> pd.Series | str:
    """Per-row bounds (grouped) or one bound, as text for a reason."""
    if isinstance(bound, pd.Series):
        return bound.round(6).astype("str")
    return show(bound)
