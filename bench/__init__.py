"""Benchmarks: `make bench` (= `python -m bench`) runs them all; see bench/README.md."""
