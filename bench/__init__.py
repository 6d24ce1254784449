"""Benchmarks: each prints its figures, the last line one JSON object; run with make bench-<name>."""
