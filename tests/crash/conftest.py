"""The real-database fixtures (tests/db.py) for the crash trials, the same the integration tests use;
here every trial runs on every target, the PostgreSQL COPY one included."""

import pytest

from tests.db import ALL_TARGET_NAMES, databases, pg_settings, reachable, read_target, settings  # noqa: F401 (fixtures)


@pytest.fixture(params=ALL_TARGET_NAMES)
def target_name(request: pytest.FixtureRequest, databases: dict[str, bool]) -> str:  # noqa: F811  (a fixture)
    return reachable(request, databases)
