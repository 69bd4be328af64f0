"""Data governance: GX 1.x expectations as Dagster asset checks, quarantine, drift, freshness,
quality history, scorecard and catalog. Great Expectations itself is imported only when used."""

from lepton_pipelines.governance.certify import CertifyResult, certify
from lepton_pipelines.governance.checks import (
    GovernanceContext,
    clean_check_specs,
    evaluate_clean,
    evaluate_raw,
    governed_check_specs,
    landed_column_schema,
    measure_clean,
    raw_check_specs,
    record_clean,
)
from lepton_pipelines.governance.definitions import build_governance_defs
from lepton_pipelines.governance.expectations import expectation_problems
from lepton_pipelines.governance.resource import GreatExpectationsResource

__all__ = [
    "CertifyResult",
    "GovernanceContext",
    "GreatExpectationsResource",
    "build_governance_defs",
    "certify",
    "clean_check_specs",
    "evaluate_clean",
    "evaluate_raw",
    "expectation_problems",
    "governed_check_specs",
    "landed_column_schema",
    "measure_clean",
    "raw_check_specs",
    "record_clean",
]
