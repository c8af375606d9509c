"""Benchmarks: `python -m bench <name>` (run with the venv's Python)."""
