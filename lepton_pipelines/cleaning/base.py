"""The shape of a cleaning rule.

A rule is one small class: a pydantic ``Config`` (the YAML entry, selected by its ``rule:`` name) and a
pure ``apply`` that returns the cleaned frame, the rows it removed (each with a reason, so they can be
quarantined rather than lost) and a report of what it changed (shown as asset metadata). Adding a rule
is adding a class and registering it — the pipeline never grows an if/else per rule.

Why rules may work on a frame that still holds removed rows: filtering a million-row frame copies every
column, and a rule list usually removes rows in several steps (nulls, duplicates, ranges). A rule whose
``takes_alive_mask`` is true is called as ``apply(df, alive=mask)``: rows where ``alive`` is false were
removed by an earlier rule and must be ignored — not counted, not removed again, not used for
statistics or duplicate detection — and it answers with the unfiltered frame and ``keep`` (which rows
survive; None when it removes nothing). Called as ``apply(df)`` it returns a filtered frame as usual.
The pipeline then filters once, at the end or before a rule that needs a filtered frame. Every other
rule gets a filtered frame, exactly as if each removal had been applied at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

REASON_COLUMN = "_reason"  # why a row was removed by a rule
RULE_COLUMN = "_rule"  # which rule removed it
# JSON {"<column>": {"original": …, "rule": "…", "action": "nulled"|"clipped"|"filled"}} on rows where a
# rule replaced a value; null elsewhere. Built by the pipeline from each rule's ``RuleOutcome.replaced``.
REPLACED_COLUMN = "_replaced"


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str


@dataclass(frozen=True)
class ParseOptions:
    """How a column's landed text is read (see ``contract.spec.ColumnSpec``); nothing is guessed."""

    formats: tuple[str, ...] = ()  # timestamp/date: strftime patterns, "iso8601", "epoch_s|ms|us"; () = ISO-8601
    decimal: str = "."
    thousands: str | None = None
    true_values: tuple[str, ...] | None = None
    false_values: tuple[str, ...] | None = None
    timezone: str = "UTC"  # for naive timestamps


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # one of lepton_pipelines.contract.spec.COLUMN_TYPES (decimal as ``decimal(p,s)``)
    nullable: bool = True
    parse: ParseOptions = ParseOptions()
    landed_name: str | None = None  # the column's name in the landed data, when it differs
    on_parse_error: str = "quarantine"  # quarantine | null | fail

    @property
    def kind(self) -> str:
        return "decimal" if self.type.startswith("decimal") else self.type

    @property
    def source_name(self) -> str:
        return self.landed_name or self.name


@dataclass(frozen=True)
class TableInfo:
    """What a rule may need to know about the table besides its own config."""

    source: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    event_time: str | None = None

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Replaced:
    """Values one rule replaced in one column: where (positions in ``RuleOutcome.frame``, alive rows
    only), what they were before, and how (``nulled``, ``clipped`` or ``filled``)."""

    positions: np.ndarray
    original: pd.Series  # the values before the rule, one per position
    action: str


@dataclass
class RuleOutcome:
    frame: pd.DataFrame
    removed: pd.DataFrame | None = None  # removed rows, with REASON_COLUMN set; None when nothing removed
    report: dict[str, Any] = field(default_factory=dict)  # JSON-able counts: what changed, per column
    duplicates_removed: int = 0  # rows removed as duplicates (counted apart from drops in reconciliation)
    lineage: dict[str, str] = field(default_factory=dict)  # column → how this rule derived/changed it
    # Rows of ``frame`` that survive, when the rule was given ``alive``: ``frame`` then still holds every
    # input row and the pipeline filters later. None: nothing removed, or ``frame`` is already filtered.
    keep: np.ndarray | None = None
    replaced: dict[str, Replaced] = field(default_factory=dict)  # column → values this rule replaced


class CleaningRule(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[RuleConfig]]

    def __init__(self, config: RuleConfig, table: TableInfo):
        self.config = config
        self.table = table

    def validate_against(self, table: TableInfo) -> list[str]:
        """Problems with this rule for this table (e.g. unknown column), reported at definitions load."""
        return []

    @property
    def takes_alive_mask(self) -> bool:
        """True when ``apply`` accepts ``alive=`` (see the module docstring); rules opt in."""
        return False

    @abstractmethod
    def apply(self, df: pd.DataFrame) -> RuleOutcome: ...


CLEANING_RULES: dict[str, type[CleaningRule]] = {}


def register_rule(cls: type[CleaningRule]) -> type[CleaningRule]:
    CLEANING_RULES[cls.name] = cls
    return cls
