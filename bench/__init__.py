"""Benchmarks of linkvault's repository, bulk import and encryption.

Run `python -m bench.run --help`; BENCHMARKS.md records the results.
"""
