"""Lepton model service: serves one scikit-learn model artifact over HTTP (see ../../README.md)."""
