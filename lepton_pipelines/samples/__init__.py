"""Deterministic sample data for the finance case: transactions, customers, market_data, fx_rates."""

from lepton_pipelines.samples.generate import SIZES, SampleManifest, generate_all

__all__ = ["SIZES", "SampleManifest", "generate_all"]
