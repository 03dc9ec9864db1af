"""Timeouts: a database that stops answering mid-run, its connection blackholed (kept open, every byte
dropped: a hung proxy or pooler, not a close), ends the run with exit 1 within the configured bound and
one error line naming the timeout; nothing is half-written and a plain rerun completes. And every
session really carries its timeouts, a retried range waits for its lock at most the lock timeout, and a
connectorx read on a silent connection is abandoned (docs/operations.md, Timeouts)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from pydantic import SecretStr

from claims_etl.db import sql
from claims_etl.db.source import source_connection
from claims_etl.db.source_reads import read_frame
from claims_etl.engine.leases import ClaimRange, claimed
from claims_etl.errors import SourceError
from claims_etl.settings import Settings
from claims_etl.targets import connect_target
from tests.blackhole import BlackholeProxy
from tests.db import FAULTY_CLI, MARIADB_HOST, PG_ADMIN_URL, PG_HOST, SOURCE_URL, TEST_DB, make_settings
from tests.helpers import CHUNK, CLAIMS, Reader, assert_exactly_once_and_exact, assert_reconciled, cli_env, run_cli
from tests.seeding import seeded_fixture

# Short bounds, so a blackholed run ends in seconds, yet long enough for every statement of a run on a
# busy test machine. The reply timeout must outlast the statement timeout.
TIMEOUTS = {
    "CLAIMS_ETL_SOURCE_CONNECT_TIMEOUT_SECONDS": "3",
    "CLAIMS_ETL_SOURCE_STATEMENT_TIMEOUT_SECONDS": "10",
    "CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS": "5",
    "CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS": "12",
    "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS": "3",
    "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS": "6",
}
PAUSE = 6.0  # the run's pause before chunk 3 (fault_hooks), inside which the connection is blackholed
# From the blackhole to the run's exit: the rest of the pause, then the calls in flight each waiting out
# its timeout (the failed call; a progress update, then its reconnection, 3 tries; the failed run's
# bookkeeping). Without timeouts the run never ends.
BOUND = PAUSE + 60.0


seeded = seeded_fixture(CLAIMS, seed=43, invalid_rate=0.1)


def _written(read_target: Reader) -> int:
    return int(
        read_target("SELECT count(*) AS n FROM warehouse.priced_claims").item()
        + read_target("SELECT count(*) AS n FROM warehouse.rejected_claims").item()
    )


def _sessions_gone(target_name: str) -> None:
    """Wait until the servers have ended the failed run's sessions (the proxy just closed them): the
    rerun can only take the run's leases over once its run lock is free."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [TEST_DB]
            ).fetchone()
        mariadb = subprocess.run(
            ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-N", "-e",
             f"SELECT count(*) FROM information_schema.processlist WHERE db = '{TEST_DB}' AND id <> connection_id()"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() if target_name == "mysql" else "0"  # fmt: skip
        if left == (0,) and mariadb == "0":
            return
        time.sleep(0.2)
    raise AssertionError("the failed run's sessions are still open")


def _blackholed_run(seeded: Settings, read_target: Reader, proxy: BlackholeProxy, **through_proxy: str) -> str:
    """`claims-etl run` with one side reached through the proxy, blackholed while the run pauses before
    chunk 3 (chunks 1-2 written): asserts exit 1 within BOUND and one error line, which it returns (a
    progress update the source did not take may add a warning line, nothing else may)."""
    env = cli_env(
        seeded,
        CLAIMS_ETL_FAULT="pause_before_write:3",
        CLAIMS_ETL_FAULT_PAUSE=str(PAUSE),
        CLAIMS_ETL_PARTITIONS="1",  # one reader per read: the connections are what is tested here
        **TIMEOUTS,
        **through_proxy,
    )
    process = subprocess.Popen([*FAULTY_CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while _written(read_target) < 2 * CHUNK and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        proxy.blackhole()
        blackholed = time.monotonic()
        _, stderr = process.communicate(timeout=BOUND)  # raises TimeoutExpired if the run hangs
        assert time.monotonic() - blackholed < BOUND
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and all("[warning" in line for line in lines if line not in errors), stderr
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_blackholed_source_ends_the_run_within_its_timeouts(seeded: Settings, read_target: Reader) -> None:
    with BlackholeProxy(5432, PG_HOST) as proxy:
        line = _blackholed_run(
            seeded, read_target, proxy, CLAIMS_ETL_SOURCE_URL=f"postgresql://postgres@127.0.0.1:{proxy.port}/{TEST_DB}"
        )
    # the run's source session waited for the marking of a chunk: the client's reply bound ended it
    assert "CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS" in line, line
    written = _written(read_target)
    assert written % CHUNK == 0 and 2 * CHUNK <= written < CLAIMS  # whole chunks only
    _sessions_gone("postgresql")  # the proxy is closed, and with it the stuck sessions and their locks
    assert run_cli(seeded).returncode == 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.slow
@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_blackholed_warehouse_ends_the_run_within_its_timeouts(seeded: Settings, read_target: Reader) -> None:
    target = seeded.target_odbc.get_secret_value()
    with BlackholeProxy(3306, MARIADB_HOST) as proxy:
        line = _blackholed_run(
            seeded, read_target, proxy, CLAIMS_ETL_TARGET_ODBC=target.replace("Port=3306", f"Port={proxy.port}")
        )
    # the first warehouse call after the blackhole timed out: a statement waiting for MariaDB's reply
    # (READ_TIMEOUT), or a new connection waiting for its handshake (CONN_TIMEOUT), as the load reads too
    assert "Lost connection" in line and re.search(r"CLAIMS_ETL_TARGET_(QUERY|CONNECT)_TIMEOUT_SECONDS", line), line
    written = _written(read_target)
    assert written % CHUNK == 0 and 2 * CHUNK <= written < CLAIMS
    _sessions_gone("mysql")
    assert run_cli(seeded).returncode == 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_every_session_carries_its_timeouts(settings: Settings) -> None:
    """Read back from the server: psycopg's and connectorx's sessions on the source, and the psqlODBC
    warehouse's turbodbc session (its connection string's pqopt)."""
    settings = settings.model_copy(
        update={
            "source_statement_timeout_seconds": 7,
            "source_lock_timeout_seconds": 5,
            "tcp_keepalives_idle_seconds": 11,
            "target_query_timeout_seconds": 9,
        }
    )
    show = "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt"
    with source_connection(settings) as connection:
        assert connection.execute(show + ", current_setting('tcp_keepalives_idle')").fetchone() == ("7s", "5s", "11")
        assert connection.info.get_parameters()["keepalives_idle"] == "11"  # the client's own keepalives
        assert connection.execute("SELECT current_setting('jit')").fetchone() == ("off",)
    assert read_frame(settings, show + ", current_setting('jit') AS jit", stage="test").rows() == [("7s", "5s", "off")]
    target = connect_target(settings)
    try:
        cursor = target.connection.cursor()
        cursor.execute(show)
        assert cursor.fetchall() == [["9s", "0"]]  # the warehouse gets the statement timeout only
    finally:
        target.close()


def test_a_retried_range_waits_for_its_lock_at_most_the_lock_timeout(pg_settings: Settings) -> None:
    """An earlier attempt's session still holds the range (a Dask worker presumed dead): the retry fails
    after the lock timeout with an error naming the range, instead of blocking for ever."""
    settings = pg_settings.model_copy(update={"source_lock_timeout_seconds": 1})
    part = ClaimRange(run_id="run-lock-test", number=4, low=1, high=10, claims=10)
    bounds = {"run_id": part.run_id, "low": part.low, "high": part.high}
    outcome: list[BaseException | None] = []

    def retry() -> None:
        try:
            with source_connection(settings) as source, claimed(source, part):
                outcome.append(None)
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)

    with source_connection(pg_settings, autocommit=True) as earlier:
        earlier.execute(sql.load("leases/range_lock"), bounds)
        thread = threading.Thread(target=retry, daemon=True)
        thread.start()
        thread.join(30)
    assert outcome, "the retry still waits for the range's lock"
    error = outcome[0]
    assert isinstance(error, SourceError) and "range 4 is still locked" in str(error), error
    assert "CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS" in str(error)


def test_a_statement_past_the_statement_timeout_is_cancelled_by_the_server(pg_settings: Settings) -> None:
    settings = pg_settings.model_copy(
        update={"source_statement_timeout_seconds": 1, "source_reply_timeout_seconds": 30}
    )
    with pytest.raises(SourceError, match=r"statement timeout .*CLAIMS_ETL_SOURCE_STATEMENT_TIMEOUT_SECONDS"):
        read_frame(settings, "SELECT 1 AS x FROM pg_sleep(3)", stage="test")
    with pytest.raises(SourceError, match="STATEMENT_TIMEOUT"), source_connection(settings) as connection:
        connection.execute("SELECT pg_sleep(3)")


def test_reads_and_statements_on_a_silent_source_are_abandoned(pg_settings: Settings) -> None:
    """Through a blackholed proxy neither the server's timeouts (their error never arrives) nor TCP
    keepalives (the proxy's kernel answers them) end a wait: the client's reply bound does."""
    with BlackholeProxy(5432, PG_HOST) as proxy:
        url = SOURCE_URL.replace(":5432/", f":{proxy.port}/")
        settings = pg_settings.model_copy(
            update={
                "source_url": SecretStr(url),
                "source_statement_timeout_seconds": 1,
                "source_reply_timeout_seconds": 2,
            }
        )
        silent = pytest.raises(
            SourceError, match=r"no reply from the source within 2 s \(CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS\)"
        )
        with silent, source_connection(settings) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
            proxy.blackhole()
            connection.execute("SELECT 2")
        with pytest.raises(
            SourceError,
            match=r"no reply from the source within 2 s \(CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS\).*abandoned",
        ):
            read_frame(settings, "SELECT 1 AS x", stage="test")


def _through_blackhole(side: str, port: int) -> dict[str, str]:
    """The environment reaching `side` through a blackholed proxy on `port`, its connect bound 1 s."""
    if side == "source":
        url = SOURCE_URL.replace(":5432/", f":{port}/")
        return {"CLAIMS_ETL_SOURCE_URL": url, "CLAIMS_ETL_SOURCE_CONNECT_TIMEOUT_SECONDS": "1"}
    odbc = make_settings("mysql").target_odbc.get_secret_value().replace("Port=3306", f"Port={port}")
    return {"CLAIMS_ETL_TARGET_ODBC": odbc, "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS": "1"}


@pytest.mark.parametrize(("side", "port", "setting"), [
    ("source", 5432, "CLAIMS_ETL_SOURCE_CONNECT_TIMEOUT_SECONDS"),
    ("warehouse", 3306, "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
])  # fmt: skip
def test_a_database_that_never_answers_is_one_error_line_naming_the_connect_timeout(
    databases: dict[str, bool], side: str, port: int, setting: str
) -> None:
    """The slow blackhole trials' checks of the error line, in seconds: a database that accepts the
    connection and never answers ends `claims-etl db init` with exit 1 and one line naming the
    setting that bounded the wait (three tries of 1 s on the source)."""
    if side == "warehouse" and not databases["mysql"]:
        pytest.skip("MariaDB is not reachable")
    with BlackholeProxy(port, PG_HOST if side == "source" else MARIADB_HOST) as proxy:
        proxy.blackhole()
        env = cli_env(make_settings("mysql"), **_through_blackhole(side, proxy.port))
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "claims_etl", "db", "init"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1 and time.monotonic() - started < 30, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"({setting})" in lines[0], lines[0]
