"""Cleaning: schema coercion and registered cleaning rules, applied by ``run_cleaning``.

Importing this package registers every shipped rule in ``CLEANING_RULES`` (the rule modules register
themselves on import), so the source registry can validate ``cleaning:`` entries by name.
"""

from lepton_pipelines.cleaning import dedup, missing, ranges, text  # noqa: F401  (register the rules)
from lepton_pipelines.cleaning.base import (
    CLEANING_RULES,
    REASON_COLUMN,
    RULE_COLUMN,
    CleaningRule,
    ColumnInfo,
    RuleConfig,
    RuleOutcome,
    TableInfo,
    register_rule,
)
from lepton_pipelines.cleaning.coerce import PARSE_ERRORS_COLUMN, CoercionResult, coerce_to_schema
from lepton_pipelines.cleaning.pipeline import CleaningConfigError, CleaningResult, build_rules, run_cleaning

__all__ = [
    "CLEANING_RULES",
    "PARSE_ERRORS_COLUMN",
    "REASON_COLUMN",
    "RULE_COLUMN",
    "CleaningConfigError",
    "CleaningResult",
    "CleaningRule",
    "CoercionResult",
    "ColumnInfo",
    "RuleConfig",
    "RuleOutcome",
    "TableInfo",
    "build_rules",
    "coerce_to_schema",
    "register_rule",
    "run_cleaning",
]
