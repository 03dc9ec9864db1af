"""Observability: the stage timer, metrics and alerts, live progress, run records."""
