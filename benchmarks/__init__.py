"""Benchmarks for the Pot Plant CAM Explorer: ``python -m benchmarks.run`` (see benchmarks/README.md)."""
