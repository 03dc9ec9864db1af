"""The warehouse over ODBC through turbodbc, in whichever dialect its driver speaks (targets/capabilities.py):
`OdbcTarget`, the session that writes column-wise Arrow parameter arrays, `connect`, and `read_frame`,
the warehouse's reads into Polars by arrow-odbc over the same connection string."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from claims_etl.db import sql
from claims_etl.db.source import is_auth_failure, is_transient, login_refused, named_timeout, retry_connecting
from claims_etl.errors import TargetError, driver_message, odbc_sqlstate
from claims_etl.settings import Settings
from claims_etl.targets import odbc_config
from claims_etl.targets.base import Session, connection_failed, qualified_statement
from claims_etl.targets.capabilities import capabilities
from claims_etl.targets.odbc_strings import TARGET_TIMEOUTS, target_connection_string, target_dialect
from claims_etl.targets.packets import PACKET_LOST, OversizedRowError, Packets, packet_lost, packet_refused

if TYPE_CHECKING:
    import pyarrow as pa


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


@dataclass
class OdbcTarget(Session):
    """An open warehouse connection over ODBC (`connection`: turbodbc's, an untyped library). `packets`:
    the session's packet limit where the dialect has one (MariaDB/MySQL), which cuts every parameter
    array to fit (targets/packets.py); `reopen` opens a fresh session where the server closed this one
    after refusing a packet (`_columns`)."""

    packets: Packets | None = None
    reopen: Callable[[], Any] | None = None

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

    # A chunk's writes, in the open transaction (stages/write.write_tables), raising the driver's errors
    # (the caller maps them with `errors`). Column-wise Arrow parameter arrays here; COPY in targets/postgres.py.

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        """Rows in a single-chunk Arrow table whose columns are warehouse/insert_<table>.sql's, in order."""
        self._columns([self.statement(f"warehouse/insert_{table}")], rows, table)

    def delete_claims(self, tables: Sequence[str], keys: pa.Table) -> None:
        """Each table's rows of the keys: (claim_id, run_id) pairs, or claim ids alone (a reprice's)."""
        name = "warehouse/delete_run_claims" if "run_id" in keys.column_names else "warehouse/delete_claims"
        self._columns([self.statement(name, table=table) for table in tables], keys, "the repair's keys")

    def fenced(self, counts: list[Any]) -> bool:
        """warehouse/run_fence_chunk; True when it says the run was fenced (stages/write._check_fence):
        its NOT NULL violation, or where the dialect says so (`no_row_fenced`: MariaDB in a non-strict
        sql_mode), no row updated (0 stored)."""
        from turbodbc.exceptions import Error as TurbodbcError  # noqa: PLC0415  (optional driver)

        cursor = self.connection.cursor()
        try:
            cursor.execute(self.statement("warehouse/run_fence_chunk"), counts)
            return bool(self.capabilities.no_row_fenced and cursor.rowcount == 0)
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
                        elif self.packets is not None and packet_lost(str(error), estimate):
                            self.packets.refused(estimate)
                            lost = True
                            # Said as a refusal, so that the chunk is written again in smaller slices
                            # (stages/isolate.py) as after error 1153, not failed as a lost connection.
                            raise type(error)(f"{error}\n{PACKET_LOST.format(estimate)}") from error
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
            message = named_timeout(driver_message(str(error), self.secret), TARGET_TIMEOUTS)
            # A packet refused for its size is the rows' doing, not the network's: never worth a retry.
            refused = packet_refused(message)
            transient = is_transient(message) and not refused
            state = odbc_sqlstate(str(error))
            raise TargetError(
                "load", f"{what}: {message}", transient=transient, sqlstate=state, packet_refused=refused
            ) from None
        except OversizedRowError as error:
            raise TargetError("load", f"{what}: {error}", packet_refused=True) from None


def connect(settings: Settings, *, autocommit: bool = False) -> OdbcTarget:
    """A turbodbc connection over the ODBC string, tuned for column-wise parameter arrays."""
    import turbodbc  # noqa: PLC0415  (heavy import, only where the warehouse is reached)

    dialect = target_dialect(settings)
    entry = capabilities(dialect)
    secret = settings.target_odbc.get_secret_value()
    odbc_config.use_private_config(settings)  # unixODBC's trace off, before this process's first ODBC call
    options = turbodbc.make_options(
        parameter_sets_to_buffer=settings.odbc_parameter_sets,
        # Wide strings for SQL Server (its narrow strings use the server's code page); narrow UTF-8
        # elsewhere: the MariaDB driver halves its insert rate with wide strings.
        prefer_unicode=entry.prefer_unicode,
        autocommit=autocommit,
    )
    connect = retry_connecting(lambda error: is_transient(str(error)) and not is_auth_failure(str(error)))(
        turbodbc.connect
    )

    def open_session() -> Any:
        try:
            return connect(connection_string=target_connection_string(settings, dialect), turbodbc_options=options)
        except turbodbc.exceptions.Error as error:
            message = named_timeout(driver_message(str(error), secret), TARGET_TIMEOUTS)
            # A login refused (ODBC SQLSTATE 28000, or libpq's words through psqlODBC); not a database the
            # user may not use (MariaDB 1044, 42000).
            refused = "state: 28000" in message or login_refused(message)
            raise connection_failed(message, login_refused=refused, sqlstate=odbc_sqlstate(str(error))) from None

    target = OdbcTarget(connection=open_session(), dialect=dialect, secret=secret, reopen=open_session)
    if entry.packet_limit_query is not None:  # MariaDB/MySQL (SQL Server's and PostgreSQL's take any batch)
        try:
            limit = _packet_limit(target, entry.packet_limit_query)
            target.packets = Packets(limit=limit, rows_per_batch=settings.odbc_parameter_sets)
        except TargetError:
            target.close()
            raise
    return target


def _packet_limit(target: OdbcTarget, query: str) -> int:
    """The session's max_allowed_packet (one integer: turbodbc's fetch of a single row works on the
    MariaDB driver, unlike its fetch of whole results, NOTES.md)."""
    with target.errors("reading the warehouse's packet limit failed"):
        cursor = target.connection.cursor()
        try:
            cursor.execute(sql.load(query))
            row = cursor.fetchone()
        finally:
            cursor.close()
    return int(row[0])


def read_frame(settings: Settings, name: str, *, stage: str, parameters: Sequence[str], **tables: str) -> pl.DataFrame:
    """Warehouse query `name` (its `{slot}`s qualified tables, as `Session.statement` fills them) read
    into Polars by arrow-odbc over the same connection string and driver defaults as the writes:
    turbodbc's fetch hangs on the MariaDB driver (NOTES.md). Errors become one scrubbed TargetError."""
    import pyarrow as pa  # noqa: PLC0415  (only where the warehouse is read)
    from arrow_odbc import Error as ArrowOdbcError  # noqa: PLC0415
    from arrow_odbc import read_arrow_batches_from_odbc  # noqa: PLC0415

    dialect = target_dialect(settings)
    entry = capabilities(dialect)
    secret = settings.target_odbc.get_secret_value()
    query = qualified_statement(entry, name, **tables)
    odbc_config.use_private_config(settings)
    try:
        reader = read_arrow_batches_from_odbc(
            query=query,
            connection_string=target_connection_string(settings, dialect),
            batch_size=100_000,
            parameters=list(parameters) or None,  # bound as text: ? markers, never SQL text
            # SQL_ATTR_LOGIN_TIMEOUT: SQL Server's drivers before 18.7 have no keyword for it; psqlODBC
            # refuses it beside pqopt's connect_timeout, MariaDB's ignores it (both: the string's).
            login_timeout_sec=(settings.target_connect_timeout_seconds or None)
            if entry.login_timeout_attribute
            else None,
            # SQL_ATTR_QUERY_TIMEOUT: psqlODBC sets statement_timeout, SQL Server's cancels client-side;
            # MariaDB's ignores it (its READ_TIMEOUT in the string bounds the read).
            query_timeout_sec=settings.target_query_timeout_seconds or None,
        )
        frame = pl.from_arrow(pa.Table.from_batches(list(reader), schema=reader.schema))
    except ArrowOdbcError as error:
        message = named_timeout(driver_message(str(error), secret), TARGET_TIMEOUTS)
        transient, state = is_transient(message), odbc_sqlstate(str(error))
        raise TargetError(stage, message, transient=transient, sqlstate=state) from None
    assert isinstance(frame, pl.DataFrame)
    return frame
