"""The real-database fixtures (tests/db.py) for the crash trials, the same the integration tests use;
here every trial runs on every target, the PostgreSQL COPY one included."""

import pytest

from tests.db import ALL_TARGET_NAMES, databases, pg_settings, reachable, read_target, settings  # noqa: F401 (fixtures)


@pytest.fixture(params=ALL_TARGET_NAMES)
def target_name(request: pytest.FixtureRequest, databases: dict[str, bool]) -> str:  # noqa: F811  (a fixture)
    return reachable(request, databases)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The COPY target's crash tests are slow-marked: the default suite keeps the two ODBC targets' and
    tests/integration/test_faults.py the COPY target's fault tests; `-m slow` runs every crash test on all three."""
    for item in items:
        callspec = getattr(item, "callspec", None)  # the target's id is not always first in the test's
        if (
            item.nodeid.startswith("tests/crash/")
            and callspec
            and callspec.params.get("target_name") == "postgresql-copy"
        ):
            item.add_marker(pytest.mark.slow)
