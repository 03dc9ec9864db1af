"""One module per command or command group of `claims-etl`; cli/app.py assembles them. Each imports
what its work needs when it runs, so `--help` and `--version` start without Polars, Arrow, the
drivers or pydantic settings (docs/performance.md, cold start)."""
