"""Benchmarks that print JSON, side by side in one run (DESIGN §8)."""
