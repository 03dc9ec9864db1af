"""Fixtures and helpers that reach the real databases: PostgreSQL (source, and target over psqlODBC or,
as `postgresql-copy`, by URL through psycopg's COPY) and MariaDB (target over its ODBC driver), for
tests/integration and its crash trials (their conftest.py files register the fixtures; tests/unit cannot
see them). Connection settings come from the environment with local
defaults; each test gets freshly emptied tables in databases of its own (claims_etl_test), whose schemas
the session creates once and again only after a test changed them (`_reset`). Under pytest-xdist each
worker has its own databases and Redis database (the worker id appended, `claims_etl_test_gw0`): tests
empty, lock, count and kill the sessions of theirs. Importing this module
connects to nothing: only the fixtures do, when a test asks for them."""

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
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... under `pytest -n N`; "" in one process
# One per concurrent test run, and one per worker of a run
TEST_DB = os.environ.get("CLAIMS_ETL_TEST_DB", "claims_etl_test") + (f"_{WORKER}" if WORKER else "")
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


def _worker_redis(url: str) -> str:
    """`url`'s Redis database, counted down by the worker's number (Redis has databases 0-15)."""
    if not WORKER:
        return url
    server, _, number = url.rpartition("/")
    return f"{server}/{(int(number) - int(WORKER.removeprefix('gw'))) % 16}"


# The Redis database the reference cache's tests empty: 15 (14, 13... for xdist's workers gw1, gw2...)
REDIS_URL = _worker_redis(os.environ.get("CLAIMS_ETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
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


# What a test may leave behind: emptied before the next one (the tables a run, `seed` or `reference load`
# write). The source's other tables (the run log, cache digests) keep their rows, as they always have.
SOURCE_TABLES = tuple(
    f"staging.{table}"
    for table in (
        "range_leases", "claim_lines", "claims", "rvu", "gpci", "reference_releases", "qp_npis", "qp_lists",
        "claim_quarantine",
    )
)  # fmt: skip
TARGET_TABLES = (
    *WAREHOUSE_TABLES,
    "priced_claim_line_history",
    "etl_runs",
    "etl_stage_timings",
    "etl_run_metrics",
    "etl_run_alerts",
)
# The structure of the test schemas (columns, constraints, indexes, views, triggers, grants): the
# per-test reset compares it with the one the session created and rebuilds only when a test changed it.
_PG_STRUCTURE = """
SELECT md5(coalesce(string_agg(item, ';' ORDER BY item), ''))
FROM (
    SELECT concat_ws(':', n.nspname, c.relname, c.relkind, c.relacl, c.reloptions, pg_get_viewdef(c.oid)) AS item
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT concat_ws(':', n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                     a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = ANY(%(schemas)s) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT concat_ws(':', n.nspname, k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid))
    FROM pg_constraint AS k JOIN pg_namespace AS n ON n.oid = k.connamespace WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT concat_ws(':', schemaname, indexdef) FROM pg_indexes WHERE schemaname = ANY(%(schemas)s)
    UNION ALL
    SELECT concat_ws(':', t.tgrelid::regclass, pg_get_triggerdef(t.oid))
    FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal
    UNION ALL
    SELECT concat_ws(':', 'schema', nspname, nspacl) FROM pg_namespace WHERE nspname = ANY(%(schemas)s)
) AS structure
"""
_MARIADB_STRUCTURE = """
SELECT item FROM (
    SELECT concat_ws(':', table_name, table_type, engine, table_collation) AS item
    FROM information_schema.tables WHERE table_schema = '{db}'
    UNION ALL
    SELECT concat_ws(':', table_name, ordinal_position, column_name, column_type, is_nullable,
                     coalesce(column_default, ''), extra, coalesce(collation_name, ''))
    FROM information_schema.columns WHERE table_schema = '{db}'
    UNION ALL
    SELECT concat_ws(':', table_name, index_name, seq_in_index, column_name, non_unique)
    FROM information_schema.statistics WHERE table_schema = '{db}'
    UNION ALL
    SELECT concat_ws(':', event_object_table, trigger_name, action_timing, event_manipulation)
    FROM information_schema.triggers WHERE trigger_schema = '{db}'
) AS structure ORDER BY item
"""
_clean_structure: dict[str, str] = {}  # "source" / "postgresql" / "mysql" -> its structure when last built


def clean_structure(kind: str) -> str:
    """The structure of "source" (or a warehouse kind) as the session last built it."""
    return _clean_structure.get(kind, "")


def _mariadb_url() -> str:
    return f"mysql://claims_etl@{MARIADB_HOST}:3306/{TEST_DB}"


def _pg_structure(connection: psycopg.Connection[Any], *schemas: str) -> str:
    row = connection.execute(_PG_STRUCTURE, {"schemas": list(schemas)}).fetchone()
    return str(row[0]) if row else ""


def _mariadb_structure() -> str:
    rows = cx.read_sql(_mariadb_url(), _MARIADB_STRUCTURE.format(db=TEST_DB), return_type="polars")
    return "\n".join(rows.get_column("item").cast(pl.String).fill_null(""))


def _non_empty(tables: tuple[str, ...]) -> str:
    """One query naming those of `tables` that hold a row (emptying only them costs least)."""
    return " UNION ALL ".join(
        f"SELECT '{table}' AS t FROM (SELECT 1) AS one WHERE EXISTS (SELECT 1 FROM {table})" for table in tables
    )


def _warehouse_kind(settings: Settings) -> str:
    """Where the settings' warehouse lives: "postgresql" (by URL or psqlODBC, in the test database's
    warehouse schema) or "mysql" (MariaDB)."""
    return "postgresql" if settings.target_url or "PostgreSQL" in settings.target_odbc.get_secret_value() else "mysql"


def _rebuild_target(settings: Settings) -> None:
    """Drop the warehouse tables and create them again: a test changed their DDL (or none was built yet)."""
    target = targets.connect_target(settings, autocommit=True)
    try:
        for table in TARGET_TABLES:
            target.execute(f"DROP TABLE IF EXISTS {target.table(table)}")
    finally:
        target.close()
    targets.init_target(settings)


def _reset(settings: Settings) -> None:
    """Empty the source and the settings' warehouse for the next test. Their schemas are created once
    per session and again only when a test changed them (the structure differs from the one built):
    emptying tables costs a fraction of dropping and re-creating them."""
    kind = _warehouse_kind(settings)
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        if _pg_structure(connection, "staging") != _clean_structure.get("source"):
            init_source(settings)
            _clean_structure["source"] = _pg_structure(connection, "staging")
        tables = SOURCE_TABLES
        if kind == "postgresql":
            if _pg_structure(connection, "warehouse") != _clean_structure.get(kind):
                _rebuild_target(settings)
                _clean_structure[kind] = _pg_structure(connection, "warehouse")
            tables += tuple(f"warehouse.{table}" for table in TARGET_TABLES)
        full = [str(row[0]) for row in connection.execute(_non_empty(tables)).fetchall()]
        if full:
            connection.execute(f"TRUNCATE {', '.join(full)} RESTART IDENTITY CASCADE")
    if kind == "mysql":
        _reset_mariadb(settings)


def _reset_mariadb(settings: Settings) -> None:
    if _mariadb_structure() != _clean_structure.get("mysql"):
        _rebuild_target(settings)
        _clean_structure["mysql"] = _mariadb_structure()
        return  # new tables are empty
    probe = _non_empty(tuple(f"`{table}`" for table in TARGET_TABLES))
    full = cx.read_sql(_mariadb_url(), probe, return_type="polars").get_column("t").cast(pl.String).to_list()
    if not full:
        return
    target = targets.connect_target(settings, autocommit=True)
    try:  # DELETE, not TRUNCATE: a few thousand rows go faster than InnoDB re-creates a table's files
        for table in full:
            target.execute(f"DELETE FROM {table}")
    finally:
        target.close()


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
    lines, which a captured stderr would otherwise get as JSON: tests/integration/ops/test_run_telemetry.py)."""
    url = {"CLAIMS_ETL_TARGET_URL": settings.target_url.get_secret_value()} if settings.target_url else {}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLAIMS_ETL_SOURCE_URL": settings.source_url.get_secret_value(),
        "CLAIMS_ETL_TARGET_ODBC": settings.target_odbc.get_secret_value(),
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOG_FORMAT": "console",
    }
    return env | url | extra


# The command line with the crash tests' fault hooks installed (claims_etl/dev/faulty.py): only under
# it do CLAIMS_ETL_FAULT and its siblings fire; the plain `-m claims_etl` ignores them.
FAULTY_CLI = [sys.executable, "-m", "claims_etl.dev.faulty"]


def claims_etl_cli(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """`claims-etl COMMAND...` in a subprocess with `env` (see `cli_env`; its fault settings fire),
    output captured as text."""
    return subprocess.run(
        [*FAULTY_CLI, *command],
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
        [*FAULTY_CLI, "run", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=own_group,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not paused.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.exists(), f"the run never paused at {env['CLAIMS_ETL_FAULT']}"
    return run


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`claims-etl run --json [args]` in its own process (its fault settings fire)."""
    return subprocess.run(
        [*FAULTY_CLI, "run", "--json", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
