"""The source side: psycopg sessions on the PostgreSQL staging database, with every timeout and
keepalive of the settings, their errors mapped once, and the run locks that tell live runs from dead
ones. Light on purpose (psycopg; no Polars or Arrow, tenacity at the first connection): a run's first
statement goes through here before the stages' heavy imports (docs/performance.md, cold start). Reads into frames
(connectorx) are `claims_etl.db.source_reads.read_frame`.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.rows import TupleRow

from claims_etl.db import sql
from claims_etl.errors import ConfigurationError, SourceError, driver_message
from claims_etl.settings import Settings

_P = ParamSpec("_P")
_R = TypeVar("_R")


def retry_connecting(transient: Callable[[BaseException], bool]) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """The one retry policy, for connecting to either side: transient failures (a database restarting,
    a dropped packet) get a few tries with backoff, then the run fails cleanly. Work inside a run is
    never retried piecemeal: a failed run is repaired by running again (docs/design.md), which keeps
    every write exactly once. tenacity is imported at the first connection, not with this module."""

    def decorate(connect: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(connect)
        def connecting(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            import tenacity  # noqa: PLC0415 (see the docstring)

            retrying = tenacity.retry(
                retry=tenacity.retry_if_exception(transient),
                stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            )
            return retrying(connect)(*args, **kwargs)

        return connecting

    return decorate


def is_auth_failure(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in ("access denied", "password", "authentication", "28000", "28p01"))


def is_transient(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in ("deadlock", "connection", "timeout", "server has gone away"))


# A timeout's words in a driver's message, and the setting that bounds that wait (the drivers name none).
_SOURCE_TIMEOUTS = (
    ("statement timeout", "CLAIMS_ETL_SOURCE_STATEMENT_TIMEOUT_SECONDS"),
    ("lock timeout", "CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS"),
    ("connection timeout expired", "CLAIMS_ETL_SOURCE_CONNECT_TIMEOUT_SECONDS"),
    ("timeout waiting for server", "CLAIMS_ETL_SOURCE_CONNECT_TIMEOUT_SECONDS"),
)
REPLY_TIMEOUT_SETTING = "CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS"


def named_timeout(message: str, causes: Sequence[tuple[str, str]] = _SOURCE_TIMEOUTS) -> str:
    """A driver's message, with the setting that bounds the wait when it is a timeout's."""
    lowered = message.lower()
    for cause, setting in causes:
        if cause in lowered:
            return f"{message} ({setting})"
    return message


def _server_options(settings: Settings) -> str:
    """Settings every source session starts with (libpq's and rust-postgres' `options`): the statement
    and lock timeouts, and the server's own keepalives towards the client, so a session whose client
    vanished (a lost Dask worker's, holding its range lock) ends within a minute, not the OS's two hours.
    JIT off: the engine's statements are index range scans whose cost estimates pass the JIT
    thresholds, and compiling them took longer than running them (docs/performance.md)."""
    options = {
        "statement_timeout": f"{settings.source_statement_timeout_seconds}s",
        "lock_timeout": f"{settings.source_lock_timeout_seconds}s",
        "jit": "off",
    }
    if settings.tcp_keepalives_idle_seconds:
        options |= {
            "tcp_keepalives_idle": str(settings.tcp_keepalives_idle_seconds),
            "tcp_keepalives_interval": str(settings.tcp_keepalives_interval_seconds),
            "tcp_keepalives_count": str(settings.tcp_keepalives_count),
        }
    return " ".join(f"-c {name}={value}" for name, value in options.items())


def client_keepalives(settings: Settings, *, rust: bool) -> dict[str, str]:
    """TCP keepalives on the client's socket, with TCP_USER_TIMEOUT at the same total, so unacknowledged
    data ends the connection as soon as an idle one would. rust-postgres (connectorx) names the count
    `keepalives_retries` and takes tcp_user_timeout in seconds; libpq `keepalives_count`, milliseconds."""
    idle = settings.tcp_keepalives_idle_seconds
    if not idle:
        return {"keepalives": "0"}
    total = idle + settings.tcp_keepalives_interval_seconds * settings.tcp_keepalives_count
    return {
        "keepalives": "1",
        "keepalives_idle": str(idle),
        "keepalives_interval": str(settings.tcp_keepalives_interval_seconds),
        "keepalives_retries" if rust else "keepalives_count": str(settings.tcp_keepalives_count),
        "tcp_user_timeout": str(total if rust else total * 1000),
    }


def _source_parameters(settings: Settings, *, rust: bool) -> dict[str, str]:
    return {
        "connect_timeout": str(settings.source_connect_timeout_seconds),
        "options": _server_options(settings),
    } | client_keepalives(settings, rust=rust)


def _merged(given: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """The URL's parameters plus ours it does not set; `options` joined, the URL's last (they win)."""
    merged = ours | given
    if "options" in given:
        merged["options"] = f"{ours['options']} {given['options']}"
    return merged


def source_conninfo(settings: Settings) -> str:
    """The source URL as psycopg's conninfo, with the timeouts and keepalives it does not set itself."""
    given = psycopg.conninfo.conninfo_to_dict(settings.source_url.get_secret_value())
    parameters = _merged({key: str(value) for key, value in given.items()}, _source_parameters(settings, rust=False))
    # application_name lets operators (and the fault tests) find the run's sessions in pg_stat_activity
    return psycopg.conninfo.make_conninfo("", **parameters, application_name="claims-etl")


def connectorx_url(settings: Settings) -> str:
    """The source URL for connectorx (rust-postgres parses its query), with the timeouts and keepalives
    it does not set itself. The URL's own parameters are passed on as written."""
    url = settings.source_url.get_secret_value()
    base, _, query = url.partition("?")
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    given = {key: urllib.parse.unquote(value) for key, _, value in pairs}
    ours = _merged(given, _source_parameters(settings, rust=True))
    kept = [f"{key}={value}" for key, _, value in pairs if key != "options"]
    kept_keys = {key for key, _, _ in pairs} - {"options"}
    added = [f"{key}={urllib.parse.quote(value, safe='')}" for key, value in ours.items() if key not in kept_keys]
    return f"{base}?{'&'.join(kept + added)}"


class SourceConnection(psycopg.Connection[TupleRow]):
    """A psycopg connection whose every wait for the server is bounded by `reply_timeout` seconds (None:
    unbounded). Past it the connection is closed (where the protocol stood is unknown) and an
    OperationalError names the setting. This is what ends a call on a path that went silent without
    closing (a hung proxy or pooler, a route that drops packets while something still acknowledges
    them): the server's own timeouts fire but their error never arrives, and TCP keepalives are
    answered by whatever holds the socket."""

    reply_timeout: float | None = None

    def wait(self, gen: PQGen[_R], interval: float = 0.1, timeout: float | None = None) -> _R:
        try:
            return super().wait(gen, interval, self.reply_timeout if timeout is None else timeout)
        except psycopg.errors._WaitTimeout:  # psycopg's own, for the timeout Connection.wait takes
            if timeout is not None:  # the caller's own deadline (notifies), not ours
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"no reply from the source within {self.reply_timeout:g} s ({REPLY_TIMEOUT_SETTING}); connection closed"
            ) from None


# libpq's words for a login the server refused (psycopg's connection errors carry no SQLSTATE): a wrong
# password, an unknown role, no pg_hba.conf line for this client. Retrying cannot help.
_LOGIN_REFUSED = re.compile(
    r"password authentication failed|authentication failed for user|no password supplied|pg_hba\.conf|"
    r"role \".*\" does not exist",
    re.I,
)


def login_refused(message: str) -> bool:
    return _LOGIN_REFUSED.search(message) is not None


@retry_connecting(lambda error: isinstance(error, psycopg.OperationalError) and not login_refused(str(error)))
def connect_source(settings: Settings, *, autocommit: bool) -> SourceConnection:
    """A psycopg session on the source with every timeout of the settings (docs/operations.md, Timeouts)."""
    connection = SourceConnection.connect(source_conninfo(settings), autocommit=autocommit)
    connection.reply_timeout = settings.source_reply_timeout_seconds or None
    return connection


def _require_utf8(connection: psycopg.Connection[Any]) -> None:
    """Claims hold text in any language and the engine's SQL is UTF-8: a SQL_ASCII (or LATIN1) database
    cannot take it, and psycopg would fail deep in a statement with a traceback (issue 29, item 9)."""
    encoding = connection.info.parameter_status("server_encoding")
    if encoding is not None and encoding.upper() not in ("UTF8", "UTF-8"):
        connection.close()
        raise ConfigurationError(
            f"the source database's encoding is {encoding}: it must be UTF8 "
            "(CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)"
        )


@contextmanager
def source_connection(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to the staging database; errors mapped to SourceError, scrubbed. A refused
    login or a database that is not UTF8 is a ConfigurationError (exit 2): a retry cannot help."""
    url = settings.source_url.get_secret_value()
    try:
        connection = connect_source(settings, autocommit=autocommit)
    except (psycopg.Error, ValueError) as error:
        message = named_timeout(driver_message(str(error), url))
        if login_refused(message):
            raise ConfigurationError(
                f"the source database refused the login (check the user and password of the source URL): {message}"
            ) from None
        raise SourceError("connect", f"cannot reach the source database: {message}") from None
    _require_utf8(connection)
    try:
        with source_errors(url, "source"):
            yield connection
    finally:
        connection.close()


# A statement naming a table or schema `db init` creates, on a database it has not been run on.
_NOT_SET_UP = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)


@contextmanager
def source_errors(url: str, stage: str) -> Iterator[None]:
    try:
        yield
    except _NOT_SET_UP as error:
        missing = driver_message(str(error), url).splitlines()[0]
        raise ConfigurationError(
            f"{stage}: the source database is not set up ({missing}): run claims-etl db init"
        ) from None
    except psycopg.OperationalError as error:
        raise SourceError(stage, named_timeout(driver_message(str(error), url)), transient=True) from None
    except psycopg.Error as error:
        raise SourceError(stage, driver_message(str(error), url)) from None


def _staging_tables(script: str) -> list[str]:
    """The tables `db init` leaves: those it creates, less the old ones it migrates from and drops."""
    created = re.findall(r"CREATE TABLE IF NOT EXISTS (staging\.\w+)", script, re.I)
    dropped = set(re.findall(r"DROP TABLE (?:IF EXISTS )?(staging\.\w+)", script, re.I))
    return [table for table in created if table not in dropped]


def require_set_up(connection: psycopg.Connection[Any]) -> None:
    """ConfigurationError (exit 2) naming the missing tables when `db init` has not created every table
    of db/create_staging.sql here: retrying cannot help, running `db init` (which also migrates) does."""
    tables = _staging_tables(sql.load("db/create_staging"))
    was_idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    missing = [str(row[0]) for row in connection.execute(sql.load("db/missing_tables"), {"tables": tables})]
    if was_idle:  # no transaction left open: the run's session then holds its lock idle, not in one
        connection.rollback()
    if missing:
        which = "none of its tables" if len(missing) == len(tables) else f"{', '.join(missing)} missing"
        raise ConfigurationError(f"the source database is not set up ({which}): run claims-etl db init")


def init_source(settings: Settings) -> None:
    """Create the staging, lease and reference tables where missing."""
    with source_connection(settings) as connection:
        for statement in sql.statements("db/create_staging"):
            connection.execute(statement)
        if connection.execute(sql.load("db/lease_constraint_outdated")).fetchone() is not None:
            for statement in sql.statements("db/lease_constraint"):
                connection.execute(statement)
        connection.commit()


def lock_run(connection: psycopg.Connection[Any], run_id: str) -> None:
    """Mark the run alive for as long as this session lasts (see source/lock_run.sql)."""
    connection.execute(sql.load("source/lock_run"), {"run_id": run_id})
    connection.commit()


def live_runs(connection: psycopg.Connection[Any], run_ids: list[str]) -> set[str]:
    """Those of `run_ids` whose run lock some session still holds (source/live_runs.sql): asking
    takes no lock. Leaves the connection's transaction as it was."""
    if not run_ids:
        return set()
    rows = connection.execute(sql.load("source/live_runs"), {"run_ids": run_ids}).fetchall()
    return {str(row[0]) for row in rows}
