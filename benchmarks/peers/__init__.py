"""Peers: plain implementations of the engine's job, run by benchmarks/bench.py on the same data to
show what the engine's orchestration costs over the simplest fast program (polars_adbc.py)."""
