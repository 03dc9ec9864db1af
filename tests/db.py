"""Fixtures and helpers that reach the real databases: PostgreSQL (source, and target over psqlODBC or,
as `postgresql-copy`, by URL through psycopg's COPY) and MariaDB (target over its ODBC driver), for
tests/integration and tests/crash (their conftest.py files register the fixtures; tests/unit cannot
see them). Connection settings come from the environment with local
defaults; each test gets freshly emptied tables in databases of its own (claims_etl_test). Importing this
module connects to nothing: only the fixtures do, when a test asks for them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import connectorx as cx
import polars as pl
import psycopg
import pytest

from claims_etl import targets
from claims_etl.db.source import init_source
from claims_etl.settings import Settings
from claims_etl.stages.load import WAREHOUSE_TABLES
from tests.factories import RUN_DATE

PG_ADMIN_URL = os.environ.get("CLAIMS_ETL_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("CLAIMS_ETL_TEST_PG_HOST", "127.0.0.1")
MARIADB_HOST = os.environ.get("CLAIMS_ETL_TEST_MARIADB_HOST", "127.0.0.1")
TEST_DB = os.environ.get("CLAIMS_ETL_TEST_DB", "claims_etl_test")  # one per concurrent test run
SOURCE_URL = f"postgresql://postgres@{PG_HOST}:5432/{TEST_DB}"
TARGETS = {
    "postgresql": (
        f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port=5432;Database={TEST_DB};Uid=postgres;"
        "UseServerSidePrepare=0;BatchSize=100;CommLog=0"
    ),
    "mysql": (
        f"Driver={{MariaDB Unicode}};Server={MARIADB_HOST};Port=3306;Database={TEST_DB};User=claims_etl;Password=;"
    ),
    "postgresql-copy": SOURCE_URL,  # a target URL (CLAIMS_ETL_TARGET_URL), not an ODBC string
}
# The targets most tests run on; the crash trials, the fault tests and a few pipeline tests take every one.
TARGET_NAMES = ["postgresql", "mysql"]
ALL_TARGET_NAMES = [*TARGET_NAMES, "postgresql-copy"]


def _mariadb_available() -> bool:
    probe = subprocess.run(
        ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-e", f"CREATE DATABASE IF NOT EXISTS {TEST_DB}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def databases() -> dict[str, bool]:
    """Create the test databases once; report which targets are reachable."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEST_DB]).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {TEST_DB}")
    return {"postgresql": True, "mysql": _mariadb_available(), "postgresql-copy": True}


def make_settings(target: str = "postgresql", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "source_url": SOURCE_URL,
        "target_odbc": TARGETS["postgresql"] if target == "postgresql-copy" else TARGETS[target],
        "target_url": TARGETS[target] if target == "postgresql-copy" else None,  # None: whatever the environment says
        "run_date": RUN_DATE,
        "partitions": 2,
    } | overrides
    return Settings(**values)


def _reset(settings: Settings) -> None:
    init_source(settings)
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute(
            "TRUNCATE staging.range_leases, staging.claim_lines, staging.claims, staging.rvu, "
            "staging.gpci, staging.reference_releases, staging.qp_npis, staging.qp_lists, staging.claim_quarantine"
        )
    target = targets.connect_target(settings, autocommit=True)
    try:  # dropped, not emptied: every test runs against the current DDL
        for table in (
            *WAREHOUSE_TABLES,
            "priced_claim_line_history",
            "etl_runs",
            "etl_stage_timings",
            "etl_run_metrics",
            "etl_run_alerts",
        ):
            target.execute(f"DROP TABLE IF EXISTS {target.table(table)}")
    finally:
        target.close()
    targets.init_target(settings)


def reachable(request: pytest.FixtureRequest, databases: dict[str, bool]) -> str:
    """The target the test is parametrised with, or a skip if its database cannot be reached."""
    name: str = request.param
    if not databases[name]:
        pytest.skip(f"{name} target not reachable")
    return name


@pytest.fixture(params=TARGET_NAMES)
def target_name(request: pytest.FixtureRequest, databases: dict[str, bool]) -> str:
    """The target kind (a test module can take every one: parametrize `target_name` with
    ALL_TARGET_NAMES, indirect=True)."""
    return reachable(request, databases)


@pytest.fixture
def settings(target_name: str) -> Settings:
    """Settings for a fresh, empty source and target (one per target kind)."""
    settings = make_settings(target_name)
    _reset(settings)
    return settings


@pytest.fixture
def pg_settings(databases: dict[str, bool]) -> Settings:
    """Fresh source and a PostgreSQL-over-ODBC target, for tests that need only one target."""
    settings = make_settings("postgresql")
    _reset(settings)
    return settings


@pytest.fixture
def read_target(target_name: str) -> Callable[[str], pl.DataFrame]:
    """Read a warehouse table back (not through turbodbc: it hangs fetching from MariaDB's driver)."""

    def read(query: str) -> pl.DataFrame:
        if target_name == "mysql":
            url = f"mysql://claims_etl@{MARIADB_HOST}:3306/{TEST_DB}"
            return cx.read_sql(url, query.replace("warehouse.", ""), return_type="polars")
        return cx.read_sql(SOURCE_URL, query, return_type="polars")

    return read


def read_source(query: str) -> pl.DataFrame:
    return cx.read_sql(SOURCE_URL, query, return_type="polars")


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `claims-etl` subprocess on the test databases (pinned run date; console log
    lines, which a captured stderr would otherwise get as JSON: tests/integration/test_logs_metrics.py)."""
    url = {"CLAIMS_ETL_TARGET_URL": settings.target_url.get_secret_value()} if settings.target_url else {}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLAIMS_ETL_SOURCE_URL": settings.source_url.get_secret_value(),
        "CLAIMS_ETL_TARGET_ODBC": settings.target_odbc.get_secret_value(),
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOG_FORMAT": "console",
    }
    return env | url | extra


def claims_etl_cli(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """`claims-etl COMMAND...` in a subprocess with `env` (see `cli_env`), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start_paused_run(env: dict[str, str], paused: Path, *, own_group: bool = False) -> subprocess.Popen[str]:
    """`claims-etl run --json` started with a pause fault in `env` (CLAIMS_ETL_FAULT=pause_..., its once
    file `paused`); returns once the run is paused there. `own_group`: in a process group of its own, as
    a shell starts a job (a signal to the group reaches the run and the processes it started)."""
    run = subprocess.Popen(
        [sys.executable, "-m", "claims_etl", "run", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=own_group,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not paused.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.exists(), f"the run never paused at {env['CLAIMS_ETL_FAULT']}"
    return run


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`claims-etl run --json [args]` in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", "run", "--json", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
