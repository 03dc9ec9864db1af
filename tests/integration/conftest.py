"""The real-database fixtures (tests/db.py) for the integration tests: settings on freshly emptied
PostgreSQL and MariaDB targets, and a reader of the warehouse."""

from tests.db import databases, pg_settings, read_target, settings, target_name  # noqa: F401 (fixtures)
