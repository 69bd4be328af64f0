"""Helpers shared by the tests and the benchmarks: real services started for one run, tiny artifacts.

The benchmarks (``bench/``) never import ``lepton_pipelines_tests``; what both need lives here. Not part of
the product: ``setup.py`` leaves it out of the wheel.
"""
