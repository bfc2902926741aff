"""Benchmarks: each prints its figures; run ``python -m bench`` for the list."""
