"""The real-database fixtures (tests/db.py) for the crash trials, the same the integration tests use;
here every trial runs on every target, the PostgreSQL COPY one included."""

import pytest

from tests.db import ALL_TARGET_NAMES, databases, pg_settings, reachable, read_target, settings  # noqa: F401 (fixtures)


@pytest.fixture(params=ALL_TARGET_NAMES)
def target_name(request: pytest.FixtureRequest, databases: dict[str, bool]) -> str:  # noqa: F811  (a fixture)
    return reachable(request, databases)


# The crash trials the default suite keeps on the psqlODBC warehouse besides MariaDB: a SIGKILL at each
# point of a run. Every other crash trial runs there, and all of them on the COPY target, with `-m slow`
# (the default suite keeps CI's whole run within its time budget; MariaDB's ODBC path, with its gap locks
# and packet limit, is the one closest in its failure modes to SQL Server's).
_DEFAULT_ON_PSQLODBC = ("test_sigkill_at_each_point_then_rerun_is_exactly_once",)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow-marks the crash tests on the COPY target, and those on psqlODBC but `_DEFAULT_ON_PSQLODBC`:
    the default suite runs every crash test on MariaDB; `-m slow` runs each on all three targets."""
    for item in items:
        callspec = getattr(item, "callspec", None)  # the target's id is not always first in the test's
        if not item.nodeid.startswith("tests/integration/crash/") or not callspec:
            continue
        target = callspec.params.get("target_name")
        function = getattr(item, "originalname", item.name)
        if target == "postgresql-copy" or (target == "postgresql" and function not in _DEFAULT_ON_PSQLODBC):
            item.add_marker(pytest.mark.slow)
