"""Benchmarks (not tests): `python -m bench` runs them all; see README for the latest numbers."""
