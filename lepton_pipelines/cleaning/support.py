"""Small helpers every rule shares: schema checks worded for people, removed-row frames, JSON-able numbers."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from lepton_pipelines.cleaning.base import REASON_COLUMN, RULE_COLUMN, TableInfo

NUMERIC_TYPES = ("integer", "float")


def column_problems(
    table: TableInfo, columns: Iterable[str], field: str, allowed_types: Sequence[str] | None = None
) -> list[str]:
    """One message per column that is not declared, or whose declared type the rule cannot work on."""
    problems = []
    declared = ", ".join(c.name for c in table.columns)
    for name in columns:
        column = table.column(name)
        if column is None:
            problems.append(f"{field}: column {name!r} is not in the schema of {table.source!r} (columns: {declared})")
        elif allowed_types and column.type not in allowed_types:
            problems.append(
                f"{field}: column {name!r} is declared {column.type}; this rule works on {' or '.join(allowed_types)} columns"
            )
    return problems


def require_columns(df: pd.DataFrame, columns: Iterable[str], rule: str) -> None:
    """Fail with the rule and column named when a frame lacks a column the rule was configured for."""
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise KeyError(f"cleaning rule {rule!r}: column(s) {', '.join(absent)} not in the frame (columns: {', '.join(map(str, df.columns))})")


def removed_rows(df: pd.DataFrame, mask: np.ndarray | pd.Series, reason: pd.Series | str, rule: str) -> pd.DataFrame | None:
    """The rows a rule removes, each labelled with why and by which rule; None when there are none."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    removed = df[mask]  # a new frame already (copy-on-write)
    removed[REASON_COLUMN] = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)
    removed[RULE_COLUMN] = rule
    return removed


def survivors(df: pd.DataFrame, remove: np.ndarray, alive: np.ndarray | None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A removing rule's ``(frame, keep)``: the filtered frame when called without ``alive``; else the
    unfiltered frame and the keep mask, so the pipeline copies the frame once for all rules."""
    if alive is not None:
        return df, ~remove
    return (df[~remove] if remove.any() else df), None


def key_codes(df: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """One integer per row, equal exactly when the rows' ``keys`` values are equal (nulls equal nulls,
    as in ``DataFrame.duplicated``).

    Why not ``df.duplicated``: on Arrow-backed text it hashes a Python object per value (~0.4 s and
    ~70 MiB for a million keys); ``factorize`` dictionary-encodes the Arrow array instead.
    """
    codes = np.zeros(len(df), dtype=np.int64)
    for key in keys:
        column, uniques = pd.factorize(df[key], use_na_sentinel=False)
        codes = codes * max(len(uniques), 1) + column
        if len(keys) > 1:
            codes = pd.factorize(codes)[0]  # renumber densely so the product never overflows
    return codes


def duplicated_rows(df: pd.DataFrame, keys: Sequence[str], keep: str | bool = "first") -> np.ndarray:
    """``df.duplicated(subset=keys, keep=keep)`` as a numpy mask, computed on ``key_codes``."""
    codes = key_codes(df, keys)
    if keep is False:
        return np.bincount(codes, minlength=1)[codes] > 1 if len(codes) else np.zeros(0, dtype=bool)
    order = codes if keep == "first" else codes[::-1]
    marked = np.ones(len(codes), dtype=bool)
    marked[np.unique(order, return_index=True)[1]] = False
    return marked if keep == "first" else marked[::-1]


def as_text(values: pd.Series) -> pd.Series:
    """Values rendered for a human-readable reason (nulls shown as ``null``)."""
    return values.astype("str").fillna("null")


def number(value: Any) -> int | float | None:
    """A JSON-able number: numpy scalars unwrapped, NaN/NA as None, integral floats kept as float."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def show(value: Any) -> str:
    """A bound as people write it in a reason or lineage note (``0`` not ``0.0``; ``1e+06`` kept short)."""
    value = number(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)
