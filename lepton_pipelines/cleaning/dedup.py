"""``deduplicate``: keep one row per key — the latest version — and keep the older ones for audit.

Sources re-send records (API pages overlap, devices retry, files are re-dropped with corrections), so the
same key arriving twice is normal, not an error: the superseded versions are counted as duplicates rather
than drops, and returned with a reason so the quarantine zone shows exactly what was replaced.

"Latest" is the greatest ``order_by`` (default: the table's event time). Ties — or a table without an
event time — are broken by landing order: ``_source_file`` then ``_source_line`` (then frame position),
so the survivor is the same on every run. A missing event time loses to any present one. Rows with a null
key are left alone: a missing key identifies nothing, and ``drop_if_null`` is the rule that handles it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from lepton_pipelines.cleaning.base import CleaningRule, RuleConfig, RuleOutcome, TableInfo, register_rule
from lepton_pipelines.cleaning.support import (
    as_text,
    column_problems,
    duplicated_rows,
    removed_rows,
    require_columns,
    select_rows,
    survivors,
)
from lepton_pipelines.connectors.base import LINEAGE_COLUMNS

_POSITION = "__position"


@register_rule
class Deduplicate(CleaningRule):
    name: ClassVar[str] = "deduplicate"

    class Config(RuleConfig):
        rule: Literal["deduplicate"] = "deduplicate"
        keys: list[str] | None = Field(default=None, min_length=1)  # default: the table's primary key
        order_by: str | None = None  # default: the table's event_time

    config: Config

    @property
    def keys(self) -> list[str]:
        return list(self.config.keys or self.table.primary_key)

    @property
    def order_by(self) -> str | None:
        return self.config.order_by or self.table.event_time

    def validate_against(self, table: TableInfo) -> list[str]:
        if not self.keys:
            return [f"keys: {table.source!r} declares no primary_key; list the key columns under `keys:`"]
        problems = column_problems(table, self.keys, "keys")
        if self.config.order_by:
            problems += column_problems(table, [self.config.order_by], "order_by")
        return problems

    @property
    def takes_alive_mask(self) -> bool:
        return True

    def apply(self, df: pd.DataFrame, alive: np.ndarray | None = None) -> RuleOutcome:
        keys, order_by = self.keys, self.order_by
        require_columns(df, keys + ([order_by] if order_by else []), self.name)
        candidate = df[keys].notna().all(axis=1).to_numpy() & duplicated_rows(df, keys, keep=False)
        if alive is not None:  # rows removed earlier are no versions: they neither win nor lose
            candidate &= alive  # (a key repeated only among removed rows is left with one version: kept)
        report = {"keys": keys, "order_by": order_by, "duplicates_removed": 0, "keys_with_duplicates": 0}
        lineage = {k: f"unique per ({', '.join(keys)}): latest by {order_by or 'landing order'} kept" for k in keys}
        if not candidate.any():
            return RuleOutcome(frame=df, report=report, lineage=lineage)

        # Only rows whose key repeats are sorted: usually a small share of the partition.
        tie_breakers = [c for c in LINEAGE_COLUMNS if c in df.columns]
        # dict.fromkeys: the event time may itself be part of the key (e.g. [symbol, ts]).
        sort_by = list(dict.fromkeys(keys + ([order_by] if order_by else []) + tie_breakers))
        versions = select_rows(df, candidate, sort_by).assign(**{_POSITION: np.flatnonzero(candidate)})
        for name in tie_breakers:  # a categorical sorts by category order; landing order is by value
            if isinstance(versions[name].dtype, pd.CategoricalDtype):
                versions[name] = versions[name].astype(versions[name].cat.categories.dtype)
        versions = versions.sort_values(sort_by + [_POSITION], kind="stable", na_position="first")
        superseded = versions.duplicated(subset=keys, keep="last").to_numpy()
        repeated = versions.duplicated(subset=keys, keep="first").to_numpy()
        drop = np.zeros(len(df), dtype=bool)
        drop[versions[_POSITION].to_numpy()[superseded]] = True

        losers = select_rows(df, drop, keys)
        reason = "superseded duplicate of " + _describe_keys(losers, keys)
        removed = removed_rows(df, drop, reason, self.name)
        count = int(drop.sum())
        # A key has duplicates when its latest version has an earlier one (one version: nothing replaced).
        report.update(duplicates_removed=count, keys_with_duplicates=int((~superseded & repeated).sum()))
        frame, keep = survivors(df, drop, alive)
        return RuleOutcome(
            frame=frame, removed=removed, report=report, duplicates_removed=count, lineage=lineage, keep=keep
        )


def _describe_keys(rows: pd.DataFrame, keys: list[str]) -> pd.Series:
    """``device_id=d1, seq=5`` for each row, built column-wise (no per-row Python)."""
    text = None
    for key in keys:
        part = f"{key}=" + as_text(rows[key])
        text = part if text is None else text + ", " + part
    return text
