"""Connections to both sides, opened on demand (never at import), with driver errors mapped once.

- source: PostgreSQL staging through psycopg (leases, status updates, COPY: `claims_etl.db.source`)
  and connectorx (reads: `read_frame`, here);
- target: the ODBC warehouse through turbodbc (its SQL dialect from the ODBC driver in use), or, with
  a `postgresql://` target URL, a PostgreSQL warehouse through psycopg and COPY (db/pg_target.py):
  `connect_target` chooses, and both are a `Target`.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

import polars as pl
import psycopg

from claims_etl.db import odbc_config, sql
from claims_etl.db.packets import OversizedRowError, Packets
from claims_etl.db.source import (
    REPLY_TIMEOUT_SETTING,
    client_keepalives,
    connectorx_url,
    is_auth_failure,
    is_transient,
    login_refused,
    named_timeout,
    retry_connecting,
)
from claims_etl.errors import ConfigurationError, SourceError, TargetError, scrub
from claims_etl.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
Dialect = Literal["mssql", "postgresql", "mysql"]
_P = ParamSpec("_P")
_R = TypeVar("_R")

# Which ODBC drivers speak which dialect, by a fragment of the driver's registered name or library.
_DRIVER_DIALECTS: tuple[tuple[str, Dialect], ...] = (
    ("sql server", "mssql"),
    ("msodbcsql", "mssql"),
    ("freetds", "mssql"),
    ("tdsodbc", "mssql"),
    ("postgres", "postgresql"),
    ("psqlodbc", "postgresql"),
    ("mariadb", "mysql"),
    ("maodbc", "mysql"),
    ("mysql", "mysql"),
)
# Connection-string defaults per dialect, added where the user's string does not set them.
# psqlODBC: one round trip per row unless server-side prepare is off (benchmarks/LOG.md), and
# Debian's odbcinst.ini logs every statement, claim data included, to /tmp unless CommLog=0.
# MariaDB: strings go as narrow UTF-8 (prefer_unicode slows inserts), so say it is UTF-8. Its driver
# logs every call, statements included, to ~/maodbc.log when bit 4 of OPTIONS is set (Debug,
# MADB_OPT_FLAG_DEBUG), in the string or in a DSN: OPTIONS is added without it (`_driver_defaults`).
# TRACE is the driver's own trace switch. (unixODBC's trace: claims_etl/db/odbc_config.py.)
_DRIVER_DEFAULTS: dict[str, dict[str, str]] = {
    "postgresql": {"UseServerSidePrepare": "0", "BatchSize": "100", "CommLog": "0", "Debug": "0"},
    "mysql": {"CHARSET": "utf8mb4", "TRACE": "0"},
    "mssql": {},
}
_MARIADB_DEBUG_OPTION = 4


def odbc_attributes(connection_string: str) -> dict[str, str]:
    """Key=value pairs of an ODBC connection string (keys case-folded; `{...}` values unwrapped)."""
    pairs = re.findall(r"\s*([^=;]+?)\s*=\s*(\{[^}]*\}|[^;]*)\s*(?:;|$)", connection_string)
    return {key.lower(): value.strip("{}") for key, value in pairs}


def _dsn_setting(settings: Settings, dsn: str, key: str) -> str:
    """A setting of a DSN from the user's and the system's odbc.ini (what unixODBC reads); "" if none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read([Path(settings.odbc_sysini) / "odbc.ini", Path(os.path.expanduser("~/.odbc.ini"))])
    return parser.get(dsn, key, fallback="") if dsn and parser.has_section(dsn) else ""


def _driver_defaults(settings: Settings, dialect: Dialect, present: dict[str, str]) -> dict[str, str]:
    """The dialect's defaults; for MariaDB, OPTIONS as the DSN has them but without the debug log."""
    defaults = dict(_DRIVER_DEFAULTS[dialect])
    if dialect == "mysql" and not {"option", "options"} & present.keys():
        dsn = present.get("dsn", "")
        configured = (_dsn_setting(settings, dsn, "options") or _dsn_setting(settings, dsn, "option")).strip()
        options = int(configured) if configured.isdigit() else 0
        defaults["OPTIONS"] = str(options & ~_MARIADB_DEBUG_OPTION)
    return defaults


def target_dialect(settings: Settings) -> Dialect:
    """The warehouse's SQL dialect: PostgreSQL for a target URL, the explicit setting, else the ODBC
    driver's name."""
    if settings.target_url is not None:
        return "postgresql"
    if settings.target_dialect:
        return settings.target_dialect  # type: ignore[return-value]  # pattern-checked by Settings
    attributes = odbc_attributes(settings.target_odbc.get_secret_value())
    driver = attributes.get("driver") or _dsn_setting(settings, attributes.get("dsn", ""), "Driver")
    for fragment, dialect in _DRIVER_DIALECTS:
        if fragment in driver.lower():
            return dialect
    raise ConfigurationError(
        "cannot tell the warehouse's SQL dialect from CLAIMS_ETL_TARGET_ODBC "
        f"(driver {driver or 'not named'!r}); set CLAIMS_ETL_TARGET_DIALECT to mssql, postgresql or mysql"
    )


def _set_by_user(settings: Settings, present: dict[str, str], *keys: str) -> bool:
    """Whether the connection string or its DSN sets any of `keys` (case-folded)."""
    dsn = present.get("dsn", "")
    return any(key in present or _dsn_setting(settings, dsn, key) for key in keys)


def _timeout_attributes(settings: Settings, dialect: Dialect, present: dict[str, str]) -> dict[str, str]:
    """Connection-string attributes bounding the driver's waits, where the string or its DSN does not
    set them (docs/operations.md, Timeouts). turbodbc exposes neither SQL_ATTR_LOGIN_TIMEOUT nor
    SQL_ATTR_QUERY_TIMEOUT, so each driver gets its own keywords.
    - MariaDB Connector/ODBC ignores both attributes; its C connector's socket timeouts (seconds without
      a byte from the server, while reading a reply or sending a statement) are what it has.
    - ODBC Driver for SQL Server: `ConnectTimeout` (18.7 and later) is the login timeout; no keyword
      bounds a statement (its own keepalives, 30 s idle by default, find a dead server).
    - psqlODBC connects through libpq, and passes `pqopt` to it whole: libpq's connect timeout and
      keepalives, and the server's statement timeout (a KeepaliveTime/KeepaliveInterval the user set
      is the driver's own spelling of the same libpq setting: left out, or libpq refuses the conflict)."""
    login, query = str(settings.target_connect_timeout_seconds), str(settings.target_query_timeout_seconds)
    if dialect == "mysql":
        wanted = {"CONN_TIMEOUT": login, "READ_TIMEOUT": query, "WRITE_TIMEOUT": query}
        return {key: value for key, value in wanted.items() if not _set_by_user(settings, present, key.lower())}
    if dialect == "mssql":
        return {} if _set_by_user(settings, present, "connecttimeout") else {"ConnectTimeout": login}
    if _set_by_user(settings, present, "pqopt", "d5"):
        return {}
    libpq = {"connect_timeout": login} | client_keepalives(settings, rust=False)
    if _set_by_user(settings, present, "keepalivetime", "d1"):
        libpq.pop("keepalives_idle", None)
    if _set_by_user(settings, present, "keepaliveinterval", "d2"):
        libpq.pop("keepalives_interval", None)
    parameters = [f"{key}={value}" for key, value in libpq.items()]
    return {"pqopt": "{" + " ".join([*parameters, f"options='-c statement_timeout={query}s'"]) + "}"}


def target_connection_string(settings: Settings, dialect: Dialect) -> str:
    """The configured ODBC string, plus the driver defaults and timeouts the user did not set."""
    text = settings.target_odbc.get_secret_value().strip().rstrip(";")
    present = odbc_attributes(text)
    defaults = _driver_defaults(settings, dialect, present) | _timeout_attributes(settings, dialect, present)
    extra = [f"{key}={value}" for key, value in defaults.items() if key.lower() not in present]
    return ";".join([text, *extra])


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _NativeStderr:
    """fd 2 captured while connectorx reads: a Rust panic prints its report (several lines, before
    the PanicException reaches Python) straight to fd 2. Shared by concurrent readers (threads): the
    first to enter points fd 2 at a temporary file, the last to leave restores it and copies what was
    written there back to stderr; if a read failed, it is logged at debug level instead, scrubbed and
    on one line, so the failure is one line on stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved = -1
        self._file: IO[bytes] | None = None
        self._failed = False

    @contextmanager
    def captured(self, *secrets: str) -> Iterator[None]:
        with self._lock:
            if self._readers == 0:
                sys.stderr.flush()
                self._file = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the last reader, _restore)
                self._saved = os.dup(2)
                os.dup2(self._file.fileno(), 2)
                self._failed = False
            self._readers += 1
        failed = True
        try:
            yield
            failed = False
        finally:
            with self._lock:
                self._failed = self._failed or failed
                self._readers -= 1
                if self._readers == 0:
                    self._restore(secrets)

    def _restore(self, secrets: tuple[str, ...]) -> None:
        assert self._file is not None
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        written = self._file.read()
        self._file.close()
        if written and self._failed:
            log.debug("reader's native output: %s", " ".join(scrub(written.decode(errors="replace"), *secrets).split()))
        elif written:
            os.write(2, written)


_NATIVE_STDERR = _NativeStderr()


def warehouse_table(dialect: Dialect, name: str) -> str:
    """A warehouse table's qualified name: schema `warehouse` where the target has schemas."""
    return name if dialect == "mysql" else f"warehouse.{name}"


@dataclass
class Target:
    """An open warehouse connection and what statements need to know about it. `packets`: the
    session's packet limit where the dialect has one (MariaDB/MySQL), which cuts every parameter array
    to fit (db/packets.py); `reopen` opens a fresh session where the server closed this one after
    refusing a packet (`_columns`)."""

    connection: Any  # turbodbc.connection.Connection (untyped library)
    dialect: Dialect
    secret: str
    packets: Packets | None = None
    reopen: Callable[[], Any] | None = None

    def table(self, name: str) -> str:
        """A warehouse table's qualified name: schema `warehouse` where the target has schemas."""
        return warehouse_table(self.dialect, name)

    def statement(self, name: str, **tables: str) -> str:
        """Warehouse query `name` with each `{slot}` a qualified table name: the slot's own name, or
        the table given for it (`statement("warehouse/delete_claims", table="priced_claims")`)."""
        return sql.with_identifiers(name, **{slot: self.table(tables.get(slot, slot)) for slot in sql.slots(name)})

    def close(self) -> None:
        """Close the connection. turbodbc's native destructor rolls back and, on a connection that is
        already gone, prints the driver's error to stderr: silenced, the run reports its own error."""
        with _native_stderr_silenced():
            self.connection.close()

    def rollback_quietly(self) -> None:
        """Roll back after a failure; on a lost connection the server has rolled back already."""
        from turbodbc.exceptions import Error as TurbodbcError  # noqa: PLC0415

        with contextlib.suppress(TurbodbcError):
            self.connection.rollback()

    def execute(self, statement: str, parameters: list[Any] | None = None) -> None:
        with self.errors("statement failed"):
            cursor = self.connection.cursor()
            try:
                cursor.execute(statement, parameters or [])
            finally:
                cursor.close()

    def execute_many(self, statement: str, rows: list[list[Any]]) -> None:
        """One statement over a few Python rows (bookkeeping; bulk data goes through Arrow). Row by row:
        turbodbc's executemany garbled strings of the second parameter set through the MariaDB driver."""
        with self.errors("statement failed"):
            cursor = self.connection.cursor()
            try:
                for row in rows:
                    cursor.execute(statement, row)
            finally:
                cursor.close()

    def commit(self) -> None:
        self.connection.commit()

    # A chunk's writes, in the open transaction (stages/load.write_tables), raising the driver's errors
    # (the caller maps them with `errors`). Column-wise Arrow parameter arrays here; COPY in PgTarget.

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        """Rows in a single-chunk Arrow table whose columns are warehouse/insert_<table>.sql's, in order."""
        self._columns([self.statement(f"warehouse/insert_{table}")], rows, table)

    def delete_claims(self, tables: Sequence[str], keys: pa.Table) -> None:
        """Each table's rows of the keys: (claim_id, run_id) pairs, or claim ids alone (a reprice's)."""
        name = "warehouse/delete_run_claims" if "run_id" in keys.column_names else "warehouse/delete_claims"
        self._columns([self.statement(name, table=table) for table in tables], keys, "the repair's keys")

    def fenced(self, counts: list[Any]) -> bool:
        """warehouse/run_fence_chunk; True when it says the run was fenced (stages/load._check_fence):
        its NOT NULL violation, or on MariaDB in a non-strict sql_mode, no row updated (0 stored)."""
        from turbodbc.exceptions import Error as TurbodbcError  # noqa: PLC0415  (optional driver)

        cursor = self.connection.cursor()
        try:
            cursor.execute(self.statement("warehouse/run_fence_chunk"), counts)
            return bool(self.dialect == "mysql" and cursor.rowcount == 0)
        except TurbodbcError as error:
            if "state: 23" not in str(error):  # not the NOT NULL violation of a fenced run: the driver's own
                raise
            return True
        finally:
            cursor.close()

    def _columns(self, statements: Sequence[str], rows: pa.Table, what: str) -> None:
        """Each statement over the rows as column-wise parameter arrays, on one cursor; in slices that
        fit the session's packet limit, if it has one. A slice the server refuses as too big anyway
        lowers the budget, and the closed session is replaced by a fresh one before the error goes on
        (its transaction is gone either way; the caller rolls back and may write again)."""
        from turbodbc.exceptions import Error as TurbodbcError  # noqa: PLC0415  (optional driver)

        slices = [(rows, 0)] if self.packets is None else self.packets.slices(rows, what)
        cursor, lost = self.connection.cursor(), False
        try:
            for statement in statements:
                for piece, estimate in slices:
                    try:
                        cursor.executemanycolumns(statement, piece)
                    except TurbodbcError as error:
                        if self.packets is not None and packet_refused(str(error)):
                            self.packets.refused(estimate)
                            lost = True
                        raise
        finally:
            with contextlib.suppress(TurbodbcError):
                cursor.close()
            if lost:
                self.reconnect()

    def reconnect(self) -> None:
        """A fresh session in place of this one, which the server closed (the old one closed quietly)."""
        if self.reopen is None:
            return
        with contextlib.suppress(Exception):
            self.close()
        self.connection = self.reopen()

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Map turbodbc's errors to TargetError with the connection string scrubbed out."""
        from turbodbc.exceptions import Error as TurbodbcError  # noqa: PLC0415  (optional driver)

        try:
            yield
        except TurbodbcError as error:
            message = named_timeout(scrub(str(error), self.secret), _TARGET_TIMEOUTS)
            # A packet refused for its size is the rows' doing, not the network's: never worth a retry.
            transient = is_transient(message) and not packet_refused(message)
            raise TargetError("load", f"{what}: {message}", transient=transient) from None
        except OversizedRowError as error:
            raise TargetError("load", f"{what}: {error}") from None


def packet_refused(message: str) -> bool:
    """Whether a driver's error is the server refusing a packet over its size limit (MariaDB/MySQL
    error 1153, ER_NET_PACKET_TOO_LARGE, or our own refusal of an oversized row: `OversizedRowError`)."""
    return "max_allowed_packet" in message or "native error code: 1153" in message


def connect_target(settings: Settings, *, autocommit: bool = False) -> Target:
    """The warehouse session: with a target URL a psycopg one that loads by COPY (db/pg_target.py),
    else a turbodbc connection over the ODBC string, tuned for column-wise parameter arrays."""
    if settings.target_url is not None:
        from claims_etl.db import pg_target  # noqa: PLC0415  (it builds on this module)

        return pg_target.connect(settings, autocommit=autocommit)
    import turbodbc  # noqa: PLC0415  (heavy import, only where the warehouse is reached)

    dialect = target_dialect(settings)
    secret = settings.target_odbc.get_secret_value()
    odbc_config.use_private_config(settings)  # unixODBC's trace off, before this process's first ODBC call
    options = turbodbc.make_options(
        parameter_sets_to_buffer=settings.odbc_parameter_sets,
        # Wide strings for SQL Server (its narrow strings use the server's code page); narrow UTF-8
        # elsewhere: the MariaDB driver halves its insert rate with wide strings.
        prefer_unicode=dialect == "mssql",
        autocommit=autocommit,
    )
    connect = retry_connecting(lambda error: is_transient(str(error)) and not is_auth_failure(str(error)))(
        turbodbc.connect
    )

    def open_session() -> Any:
        try:
            return connect(connection_string=target_connection_string(settings, dialect), turbodbc_options=options)
        except turbodbc.exceptions.Error as error:
            message = named_timeout(scrub(str(error), secret), _TARGET_TIMEOUTS)
            # A login refused (ODBC SQLSTATE 28000, or libpq's words through psqlODBC): a wrong user or password
            # is configuration, retrying cannot help. Not a database the user may not use (MariaDB 1044, 42000).
            if "state: 28000" in message or login_refused(message):
                raise ConfigurationError(
                    f"the warehouse refused the login (check its user and password): {message}"
                ) from None
            raise TargetError("connect", f"cannot reach the warehouse: {message}") from None

    target = Target(connection=open_session(), dialect=dialect, secret=secret, reopen=open_session)
    if dialect == "mysql":  # the only dialect with a packet limit (SQL Server's and PostgreSQL's take any batch)
        try:
            target.packets = Packets(limit=_packet_limit(target), rows_per_batch=settings.odbc_parameter_sets)
        except TargetError:
            target.close()
            raise
    return target


def _packet_limit(target: Target) -> int:
    """The session's max_allowed_packet (one integer: turbodbc's fetch of a single row works on the
    MariaDB driver, unlike its fetch of whole results, NOTES.md)."""
    with target.errors("reading the warehouse's packet limit failed"):
        cursor = target.connection.cursor()
        try:
            cursor.execute(sql.load("warehouse/packet_limit.mysql"))
            row = cursor.fetchone()
        finally:
            cursor.close()
    return int(row[0])


# A timeout's words in a warehouse driver's message, and the setting that bounds that wait.
_TARGET_TIMEOUTS = (
    # MariaDB: its READ/WRITE_TIMEOUT expiring and a server closing the connection read alike (2013)
    ("lost connection to server during query", "no reply within CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS, or closed"),
    ("at 'handshake", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
    ("statement timeout", "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS"),
    ("query timeout expired", "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS"),
    ("login timeout expired", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
    ("timeout expired", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
)


def read_target_frame(
    settings: Settings, name: str, *, stage: str, parameters: Sequence[str] = (), **tables: str
) -> pl.DataFrame:
    """Warehouse query `name` (its `{slot}`s qualified tables, as `Target.statement` fills them) read
    into Polars by arrow-odbc over the same connection string and driver defaults as the writes:
    turbodbc's fetch hangs on the MariaDB driver (NOTES.md). Errors become one scrubbed TargetError.
    With a target URL, read over psycopg instead (`pg_target.read_frame`)."""
    if settings.target_url is not None:
        from claims_etl.db import pg_target  # noqa: PLC0415

        return pg_target.read_frame(settings, name, stage=stage, parameters=parameters, **tables)
    import pyarrow as pa  # noqa: PLC0415  (only where the warehouse is read)
    from arrow_odbc import Error as ArrowOdbcError  # noqa: PLC0415
    from arrow_odbc import read_arrow_batches_from_odbc  # noqa: PLC0415

    dialect = target_dialect(settings)
    secret = settings.target_odbc.get_secret_value()
    query = sql.with_identifiers(
        name, **{slot: warehouse_table(dialect, tables.get(slot, slot)) for slot in sql.slots(name)}
    )
    odbc_config.use_private_config(settings)
    try:
        reader = read_arrow_batches_from_odbc(
            query=query,
            connection_string=target_connection_string(settings, dialect),
            batch_size=100_000,
            parameters=list(parameters) or None,  # bound as text: ? markers, never SQL text
            # SQL_ATTR_LOGIN_TIMEOUT: SQL Server's drivers before 18.7 have no keyword for it; psqlODBC
            # refuses it beside pqopt's connect_timeout, MariaDB's ignores it (both: the string's).
            login_timeout_sec=(settings.target_connect_timeout_seconds or None) if dialect == "mssql" else None,
            # SQL_ATTR_QUERY_TIMEOUT: psqlODBC sets statement_timeout, SQL Server's cancels client-side;
            # MariaDB's ignores it (its READ_TIMEOUT in the string bounds the read).
            query_timeout_sec=settings.target_query_timeout_seconds or None,
        )
        frame = pl.from_arrow(pa.Table.from_batches(list(reader), schema=reader.schema))
    except ArrowOdbcError as error:
        message = named_timeout(scrub(str(error), secret), _TARGET_TIMEOUTS)
        raise TargetError(stage, message, transient=is_transient(str(error))) from None
    assert isinstance(frame, pl.DataFrame)
    return frame


class _AbandonedError(Exception):
    """A bounded call did not return in time (`_within`)."""


def _within(seconds: float | None, call: Callable[[], _R]) -> _R:
    """`call()` on a daemon thread, waited for at most `seconds` (None: called here, unbounded); its
    result, or its exception (a BaseException too) raised here. Past the bound `_AbandonedError` is raised
    and the thread left behind, blocked in the driver: connectorx has no timeout of its own for a
    silent connection, and a daemon thread does not keep the process from exiting."""
    if seconds is None:  # unbounded: no side thread (a Dask worker's reads, engine/dask_engine.py)
        return call()
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # handed to the waiting thread, raised there
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="claims-etl-source-read", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise _AbandonedError
    returned, value = outcome[0]
    if not returned:
        raise value
    result: _R = value
    return result


def read_frame(settings: Settings, query: str | list[str], *, stage: str) -> pl.DataFrame:
    """A query read from the source into Polars by connectorx, or a list of queries read side by side
    (one connection each) into one frame: callers partition in Python, never by connectorx's int64
    arithmetic (stages/extract.partition_bounds). connectorx raises RuntimeError, or panics, with the
    URL inside the text: every failure becomes one scrubbed SourceError here. A panic (pyo3's
    PanicException, say on a column type it cannot convert) derives from BaseException, not Exception,
    so it is caught as one; Ctrl-C and exits pass through. The panic's own report to stderr is kept
    off it (`_NativeStderr`). The read as a whole is bounded by the reply timeout (`_within`), each of
    its statements by the server's."""
    import connectorx as cx  # noqa: PLC0415  (Rust extension, only where the source is read)

    url, reader_url = settings.source_url.get_secret_value(), connectorx_url(settings)
    bound = settings.source_reply_timeout_seconds or None
    try:
        with _NATIVE_STDERR.captured(url, reader_url):
            table = _within(bound, lambda: cx.read_sql(reader_url, query, return_type="arrow"))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except _AbandonedError:
        message = f"no reply from the source within {bound} s ({REPLY_TIMEOUT_SETTING}); the read was abandoned"
        raise SourceError(stage, message, transient=True) from None
    except Exception as error:
        raise SourceError(stage, named_timeout(scrub(str(error), url, reader_url)), transient=True) from None
    except BaseException as error:  # a Rust panic
        raise SourceError(stage, f"the reader panicked: {scrub(str(error), url, reader_url)}") from None
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def init_target(settings: Settings) -> Dialect:
    """Create the warehouse tables where missing, in the target's dialect."""
    target = connect_target(settings, autocommit=True)
    try:
        for statement in sql.statements(f"db/create_warehouse.{target.dialect}"):
            target.execute(statement)
    finally:
        target.close()
    return target.dialect


def copy_frame(cursor: psycopg.Cursor[Any], table: str, frame: pl.DataFrame) -> None:
    """COPY a frame into a table as CSV: strings quoted, so "" is an empty string and bare is NULL."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, quote_style="non_numeric")
    with cursor.copy(sql.with_identifiers("db/copy_csv", table=table, columns=frame.columns)) as copy:
        copy.write(buffer.getvalue())
