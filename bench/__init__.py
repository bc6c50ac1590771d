"""Benchmarks (``make bench``): not tests, never collected by pytest."""
