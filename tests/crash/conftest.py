"""The real-database fixtures (tests/db.py) for the crash trials, the same the integration tests use."""

from tests.db import databases, pg_settings, read_target, settings, target_name  # noqa: F401 (fixtures)
