"""A PostgreSQL warehouse reached by psycopg (`CLAIMS_ETL_TARGET_URL=postgresql://...`) instead of ODBC.

psqlODBC inserts a few tens of thousands of rows a second, PostgreSQL's COPY more than ten times that
(benchmarks/LOG.md). `PgTarget` is the `Target` protocol (targets/base.py) on a psycopg connection: bookkeeping
statements are the same query files, their `?` markers turned into psycopg's; a chunk's rows go by
`COPY ... FROM STDIN (FORMAT csv)` inside the chunk's transaction, so the exactly-once order (repair
DELETE, rows, fence check, commit, then the source's marking) is the ODBC path's.

CSV and NULL: pyarrow's writer quotes every value that is not null and leaves a null as an empty
unquoted field, which PostgreSQL's CSV COPY reads as NULL, while `""` stays an empty string; commas,
quotes and newlines inside a quoted value are CSV's own business. Money is already an exact decimal
string in the load schema (stages/load.py), so cents survive as written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv

from claims_etl.db import sql
from claims_etl.db.source import login_refused, retry_connecting
from claims_etl.errors import ConfigurationError, TargetError, driver_message
from claims_etl.settings import Settings
from claims_etl.targets.base import Session, connection_failed

_CSV = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
# Warehouse column types (PostgreSQL type names) as Polars reads them back; anything else is text.
_READ_TYPES: dict[str, pl.DataType] = {
    "int2": pl.Int64(),
    "int4": pl.Int64(),
    "int8": pl.Int64(),
    "float8": pl.Float64(),
    "timestamp": pl.Datetime("us"),
}


def target_url(settings: Settings) -> str:
    """The configured warehouse URL; a ConfigurationError unless it is a postgresql:// one."""
    assert settings.target_url is not None
    url = settings.target_url.get_secret_value().strip()
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError(
            "CLAIMS_ETL_TARGET_URL must be a postgresql:// URL (other warehouses: CLAIMS_ETL_TARGET_ODBC)"
        )
    return url


def _psycopg_markers(statement: str) -> str:
    """`?` markers as psycopg's `%s` (a literal `%` doubled): the query files are written for ODBC."""
    return statement.replace("%", "%%").replace("?", "%s")


@dataclass
class PgTarget(Session):
    """The warehouse on a psycopg connection; `connection` is a `psycopg.Connection`."""

    def statement(self, name: str, **tables: str) -> str:
        return _psycopg_markers(super().statement(name, **tables))

    def close(self) -> None:
        self.connection.close()

    def rollback_quietly(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.connection.rollback()

    def execute(self, statement: str, parameters: list[Any] | None = None) -> None:
        """Without parameters a statement is sent as written (DDL: no markers are parsed)."""
        with self.errors("statement failed"), self.connection.cursor() as cursor:
            cursor.execute(statement, parameters)

    def execute_many(self, statement: str, rows: list[list[Any]]) -> None:
        with self.errors("statement failed"), self.connection.cursor() as cursor:
            cursor.executemany(statement, rows)

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        """COPY the rows (load-schema columns, by name) as CSV, in the open transaction."""
        buffer = pa.BufferOutputStream()
        pa_csv.write_csv(rows, buffer, _CSV)
        copy_rows = sql.with_identifiers("db/copy_csv", table=self.table(table), columns=rows.column_names)
        with self.connection.cursor() as cursor, cursor.copy(copy_rows) as copy:
            copy.write(memoryview(buffer.getvalue()))

    def delete_claims(self, tables: Sequence[str], keys: pa.Table) -> None:
        """One DELETE per table for all the keys (arrays bound whole), not one per claim."""
        by_run = "run_id" in keys.column_names
        name = "pg_warehouse/delete_run_claims" if by_run else "pg_warehouse/delete_claims"
        arrays = [keys.column(column).to_pylist() for column in keys.column_names]
        with self.connection.cursor() as cursor:
            for table in tables:
                cursor.execute(self.statement(name, table=table), arrays)

    def fenced(self, counts: list[Any]) -> bool:
        """warehouse/run_fence_chunk in the open transaction; True when its NOT NULL violation says
        the run was fenced (the transaction is then aborted: the caller rolls back)."""
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(self.statement("warehouse/run_fence_chunk"), counts)
        except psycopg.errors.NotNullViolation:
            return True
        return False

    def reconnect(self) -> None:
        """Nothing to replace: only a packet refused over ODBC closes a session under a chunk's writes."""

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """psycopg's errors as one TargetError (`target_error`); a lost connection, a deadlock or a
        serialization failure (OperationalError, TransactionRollback) is transient."""
        try:
            yield
        except psycopg.Error as error:
            raise target_error("load", error, self.secret, what) from None


def connect(settings: Settings, *, autocommit: bool = False) -> PgTarget:
    """A psycopg session on the warehouse; transient failures retried like every connection."""
    url = target_url(settings)
    connect_with_retries = retry_connecting(
        lambda error: isinstance(error, psycopg.OperationalError) and not login_refused(str(error))
    )(psycopg.connect)
    try:
        # application_name: operators (and the fault tests) find the run's sessions by it
        connection = connect_with_retries(
            _conninfo(settings, url), autocommit=autocommit, application_name="claims-etl", client_encoding="utf8"
        )
    except (psycopg.Error, ValueError) as error:
        message = driver_message(str(error), url)
        raise connection_failed(message, login_refused=login_refused(message)) from None
    return PgTarget(connection=connection, dialect="postgresql", secret=url)


def _conninfo(settings: Settings, url: str) -> str:
    """The URL with the warehouse's bounds on every wait (docs/operations.md, Timeouts) where it does
    not set them itself: login timeout, the server's statement_timeout, TCP keepalives."""
    ours = {
        "connect_timeout": str(settings.target_connect_timeout_seconds),
        "options": f"-c statement_timeout={settings.target_query_timeout_seconds * 1000}",
    }
    if settings.tcp_keepalives_idle_seconds:
        ours |= {
            "keepalives": "1",
            "keepalives_idle": str(settings.tcp_keepalives_idle_seconds),
            "keepalives_interval": str(settings.tcp_keepalives_interval_seconds),
            "keepalives_count": str(settings.tcp_keepalives_count),
        }
    given = {key: str(value) for key, value in psycopg.conninfo.conninfo_to_dict(url).items()}
    if "options" in given:  # both, the URL's last: it wins
        given["options"] = f"{ours['options']} {given['options']}"
    return psycopg.conninfo.make_conninfo("", **(ours | given))


def read_frame(settings: Settings, name: str, *, stage: str, parameters: Sequence[str], **tables: str) -> pl.DataFrame:
    """Warehouse query `name` read into Polars over psycopg, typed from the result's columns (numeric
    keeps its precision and scale: money stays exact). For the small reads of load, reprice and
    reconcile; errors become one scrubbed TargetError."""
    target = connect(settings, autocommit=True)
    try:
        with target.connection.cursor() as cursor:
            cursor.execute(target.statement(name, **tables), list(parameters) or None)
            rows = cursor.fetchall()
            schema = {column.name: _read_type(column) for column in cursor.description or ()}
    except psycopg.Error as error:
        raise target_error(stage, error, target.secret) from None
    finally:
        target.close()
    return pl.DataFrame(rows, schema=schema, orient="row")


def target_error(stage: str, error: psycopg.Error, secret: str, what: str = "") -> TargetError:
    """psycopg's error as a TargetError: its SQLSTATE recorded, and named in the message (psycopg's text
    has none), the text without the URL or any row value (`errors.driver_message`: COPY's context
    quotes the refused value); a lost connection (OperationalError) transient."""
    state = error.sqlstate
    message = driver_message(str(error), secret) + (f" (SQLSTATE {state})" if state else "")
    transient = isinstance(error, psycopg.OperationalError)
    return TargetError(stage, f"{what}: {message}" if what else message, transient=transient, sqlstate=state)


def _read_type(column: psycopg.Column) -> pl.DataType:
    info = psycopg.adapters.types.get(column.type_code)
    type_name = info.name if info is not None else ""
    if type_name == "numeric":
        return pl.Decimal(column.precision or 38, column.scale or 0)
    return _READ_TYPES.get(type_name, pl.String())
