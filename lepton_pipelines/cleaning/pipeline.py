"""Run a source's cleaning rules in their declared order and account for every row.

The result reconciles: ``input_rows = output_rows + duplicates_removed + rows_dropped``. A rule whose
outcome does not add up (rows neither kept nor returned as removed) stops the run — silently losing rows
is the one failure a cleaning step must never have.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import ValidationError

from lepton_pipelines.cleaning.base import CLEANING_RULES, REASON_COLUMN, RULE_COLUMN, CleaningRule, RuleOutcome, TableInfo
from lepton_pipelines.cleaning.support import select_rows


class CleaningConfigError(ValueError):
    """Every problem in a list of rule entries, one line each, naming the entry, field and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in cleaning rules:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class CleaningResult:
    frame: pd.DataFrame
    removed: pd.DataFrame  # every removed row with _reason and _rule (duplicates: _rule == "deduplicate")
    input_rows: int
    duplicates_removed: int = 0
    rows_dropped: int = 0  # removals other than superseded duplicates
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<index>_<rule>" → rule report
    lineage: dict[str, list[str]] = field(default_factory=dict)  # column → what each rule did to it, in order

    def reconciliation(self) -> dict[str, Any]:
        output_rows = len(self.frame)
        return {
            "input_rows": self.input_rows,
            "output_rows": output_rows,
            "duplicates_removed": self.duplicates_removed,
            "rows_dropped": self.rows_dropped,
            "balanced": self.input_rows == output_rows + self.duplicates_removed + self.rows_dropped
            and len(self.removed) == self.duplicates_removed + self.rows_dropped,
        }


def run_cleaning(df: pd.DataFrame, rules: Sequence[CleaningRule]) -> CleaningResult:
    """Apply ``rules`` in order; each rule sees only the rows every earlier rule kept.

    Removals are collected in one ``alive`` mask while the rules that take it run on the unfiltered frame
    (see ``cleaning.base``), so the frame is copied once at the end instead of once per removing rule.
    """
    frame = df
    alive: np.ndarray | None = None  # None: every row of ``frame`` is alive
    removed: list[pd.DataFrame] = []
    result = CleaningResult(frame=df, removed=df.iloc[0:0], input_rows=len(df))
    for index, rule in enumerate(rules):
        if rule.takes_alive_mask:
            alive = np.ones(len(frame), dtype=bool) if alive is None else alive
            outcome = rule.apply(frame, alive=alive)
        else:
            if alive is not None:
                frame, alive = select_rows(frame, alive), None
            outcome = rule.apply(frame)
        rows_in = len(frame) if alive is None else int(alive.sum())
        removed_count = 0 if outcome.removed is None else len(outcome.removed)
        kept = _kept_rows(outcome, frame, alive)
        if kept + removed_count != rows_in or outcome.duplicates_removed > removed_count:
            raise RuntimeError(
                f"cleaning rule #{index} {rule.name!r} does not account for its rows: {rows_in} in, "
                f"{kept} kept, {removed_count} removed ({outcome.duplicates_removed} as duplicates)"
            )
        if outcome.removed is not None:
            removed.append(outcome.removed)
        result.duplicates_removed += outcome.duplicates_removed
        result.rows_dropped += removed_count - outcome.duplicates_removed
        result.reports[f"{index}_{rule.name}"] = outcome.report
        for column, step in outcome.lineage.items():
            result.lineage.setdefault(column, []).append(f"{rule.name}: {step}")
        frame = outcome.frame
        if outcome.keep is not None:
            alive = alive & outcome.keep
    result.frame = frame if alive is None or alive.all() else select_rows(frame, alive)
    result.removed = _concat_removed(removed, df)
    return result


def _kept_rows(outcome: RuleOutcome, frame: pd.DataFrame, alive: np.ndarray | None) -> int:
    """Rows the rule kept, counted among the rows it was given (its alive rows, when given a mask)."""
    if alive is None:
        return len(outcome.frame)
    if len(outcome.frame) != len(frame) or (outcome.keep is not None and len(outcome.keep) != len(frame)):
        raise RuntimeError("a rule given `alive` must return the unfiltered frame (and `keep` over its rows)")
    return int(alive.sum() if outcome.keep is None else (outcome.keep & alive).sum())


def build_rules(entries: Sequence[Mapping[str, Any]], table: TableInfo) -> list[CleaningRule]:
    """Rules from YAML-shaped entries (``{"rule": "trim", ...}``), checked against ``table``; all problems at once."""
    rules: list[CleaningRule] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        where = f"cleaning[{index}]"
        name = entry.get("rule")
        if name not in CLEANING_RULES:
            problems.append(f"{where}.rule: {name!r} is not a cleaning rule; allowed: {', '.join(sorted(CLEANING_RULES))}")
            continue
        cls = CLEANING_RULES[name]
        try:
            config = cls.Config.model_validate(dict(entry))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{where} ({name}){'.' + loc if loc else ''}: {err['msg']}")
            continue
        rule = cls(config, table)
        problems.extend(f"{where} ({name}): {p}" for p in rule.validate_against(table))
        rules.append(rule)
    if problems:
        raise CleaningConfigError(problems)
    return rules


def _concat_removed(frames: list[pd.DataFrame], original: pd.DataFrame) -> pd.DataFrame:
    if not frames:
        empty = original.iloc[0:0].copy()
        empty[REASON_COLUMN] = pd.Series(dtype="str")
        empty[RULE_COLUMN] = pd.Series(dtype="str")
        return empty
    return pd.concat(frames)
