"""The candidate of issue 32 item 3 that was measured and not adopted (benchmarks/pg_ingest.py,
benchmarks/LOG.md): a PostgreSQL warehouse by URL whose session is one ADBC connection (the ADBC
PostgreSQL driver over libpq). A chunk's rows go by `adbc_ingest`, a binary COPY the driver writes
from Arrow in C++, and the repair DELETE, the fence check and the commit go over the same connection,
in the same transaction (stages/write.write_tables), so the exactly-once order is that of the other
targets. It is the `Target` protocol whole, so that it could replace targets/postgres.PgTarget.

Binary COPY takes each value in its column's own binary type: money (a decimal string in the load
schema, stages/load.py) is cast to decimal128, and integers to the width of their column. The
decimal is given 38 digits, so a value too large for its numeric(p, s) column is the server's
numeric overflow (SQLSTATE 22003), as it is over CSV; an integer too large for a smallint or integer
column fails its cast here and is reported with that same SQLSTATE and the column's name, never the
value, so stages/isolate.py quarantines the claim as it would over CSV.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_pg
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from claims_etl.db.source import login_refused, retry_connecting
from claims_etl.errors import TargetError, driver_message
from claims_etl.targets.base import Session, connection_failed

# SQLSTATE classes of a failure worth retrying (psycopg's OperationalError: a lost connection 08, a
# rolled-back transaction 40, resources 53, limits 54, object state 55, operator action 57, system 58).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "54", "55", "57", "58"})
# Integer widths of PostgreSQL's integer types; binary COPY refuses any other width for them.
_INTEGERS: dict[str, pa.DataType] = {"int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64()}
_NUMERIC_SCALE_UNCONSTRAINED = 5  # an unconstrained numeric column: the load schema's finest scale
# A table's columns and their types: integer widths and numeric scales (the scale is in atttypmod).
_COLUMN_TYPES = """
SELECT a.attname::text, t.typname::text,
       CASE WHEN t.typname = 'numeric' AND a.atttypmod >= 4 THEN (a.atttypmod - 4) & 65535 END
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_type AS t ON t.oid = a.atttypid
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
"""
_DRIVER_NOISE = re.compile(r"^[A-Z_]+: (\[libpq\] )?|PGRES_FATAL_ERROR |ERROR: +")


class ValueOutOfRangeError(Exception):
    """An integer too large for its column's type, found while casting the chunk for binary COPY."""

    sqlstate = "22003"  # numeric_value_out_of_range, as the server says over CSV


def _markers(statement: str) -> str:
    """`?` markers as libpq's `$1`, `$2`, ...: the query files are written for ODBC."""
    numbers = iter(range(1, statement.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", statement)


def _one_line(message: str) -> str:
    """The driver's message on one line, without its status prefix and libpq's result-status noise."""
    return " ".join(_DRIVER_NOISE.sub("", line.strip()) for line in message.splitlines() if line.strip(" ."))


@dataclass
class AdbcPgTarget(Session):
    """The warehouse on an ADBC DBAPI connection (autocommit off unless asked)."""

    # Per warehouse table, the Arrow type each column is sent as (read once per session).
    _types: dict[str, dict[str, pa.DataType]] = field(default_factory=dict, init=False, repr=False)

    def statement(self, name: str, **tables: str) -> str:
        return _markers(super().statement(name, **tables))

    def close(self) -> None:
        with contextlib.suppress(adbc_driver_manager.Error):
            self.connection.close()

    def rollback_quietly(self) -> None:
        with contextlib.suppress(adbc_driver_manager.Error):
            self.connection.rollback()

    def execute(self, statement: str, parameters: list[Any] | None = None) -> None:
        with self.errors("statement failed"), self._cursor() as cursor:
            cursor.execute(statement, parameters)

    def execute_many(self, statement: str, rows: list[list[Any]]) -> None:
        if not rows:
            return
        with self.errors("statement failed"), self._cursor() as cursor:
            cursor.executemany(statement, rows)

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        """Binary COPY of the rows (load-schema columns, by name), each cast to its column's type, in
        the open transaction."""
        typed = self._typed(table, rows)
        with self._cursor() as cursor:
            cursor.adbc_ingest(table, typed, mode="append", db_schema_name=self.capabilities.schema)

    def delete_claims(self, tables: Sequence[str], keys: pa.Table) -> None:
        """One DELETE per table for all the keys (arrays bound whole), not one per claim."""
        by_run = "run_id" in keys.column_names
        name = "pg_warehouse/delete_run_claims" if by_run else "pg_warehouse/delete_claims"
        arrays = [keys.column(column).to_pylist() for column in keys.column_names]
        with self._cursor() as cursor:
            for table in tables:
                cursor.execute(self.statement(name, table=table), arrays)

    def fenced(self, counts: list[Any]) -> bool:
        """warehouse/run_fence_chunk in the open transaction; True when its NOT NULL violation (23502)
        says the run was fenced (the transaction is then aborted: the caller rolls back)."""
        try:
            with self._cursor() as cursor:
                cursor.execute(self.statement("warehouse/run_fence_chunk"), counts)
        except adbc_driver_manager.IntegrityError as error:
            if error.sqlstate == "23502":
                return True
            raise
        return False

    def reconnect(self) -> None:
        """Nothing to replace: only a packet refused over ODBC closes a session under a chunk's writes."""

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """The driver's errors as one TargetError on one line, the URL scrubbed out; a lost connection,
        a deadlock, a serialization failure or a timeout (`_TRANSIENT_CLASSES`) is transient."""
        try:
            yield
        except (adbc_driver_manager.Error, ValueOutOfRangeError) as error:
            state = getattr(error, "sqlstate", None)
            transient = isinstance(error, adbc_driver_manager.OperationalError) or (
                isinstance(state, str) and state[:2] in _TRANSIENT_CLASSES
            )
            message = driver_message(_one_line(str(error)), self.secret)
            raise TargetError("load", f"{what}: {message}", transient=transient) from None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def _typed(self, table: str, rows: pa.Table) -> pa.Table:
        """The rows with each column in the Arrow type its warehouse column takes in binary COPY."""
        types = self._column_types(table)
        columns = []
        for name, column in zip(rows.column_names, rows.columns, strict=True):
            wanted = types.get(name, column.type)
            if pa.types.is_integer(wanted) and wanted != column.type:
                info = {pa.int16(): (-(2**15), 2**15 - 1), pa.int32(): (-(2**31), 2**31 - 1)}.get(wanted)
                if info is not None and len(column) and column.null_count < len(column):
                    low, high = pc.min_max(column).values()
                    if low.as_py() < info[0] or high.as_py() > info[1]:
                        raise ValueOutOfRangeError(f"integer out of range for column '{name}' of {table}")
            columns.append(column.cast(wanted) if wanted != column.type else column)
        return pa.Table.from_arrays(columns, names=rows.column_names)

    def _column_types(self, table: str) -> dict[str, pa.DataType]:
        """The Arrow types of the table's integer and numeric columns, from the warehouse's catalog."""
        if table not in self._types:
            with self._cursor() as cursor:
                cursor.execute(_COLUMN_TYPES, [self.capabilities.schema, table])
                found = cursor.fetchall()
            types: dict[str, pa.DataType] = {}
            for column, type_name, scale in found:
                if type_name in _INTEGERS:
                    types[column] = _INTEGERS[type_name]
                elif type_name == "numeric":
                    types[column] = pa.decimal128(38, _NUMERIC_SCALE_UNCONSTRAINED if scale is None else scale)
            self._types[table] = types
        return self._types[table]


def connect(url: str, *, autocommit: bool = False) -> AdbcPgTarget:
    """An ADBC session on the warehouse at `url`, named as the run's sessions are; transient failures
    retried like every connection."""
    conninfo = psycopg.conninfo.make_conninfo(url, application_name="claims-etl", client_encoding="utf8")
    connect_with_retries = retry_connecting(
        lambda error: isinstance(error, adbc_driver_manager.OperationalError) and not login_refused(str(error))
    )(adbc_pg.connect)
    try:
        connection = connect_with_retries(conninfo, autocommit=autocommit)
    except adbc_driver_manager.Error as error:
        message = driver_message(_one_line(str(error)), url)
        raise connection_failed(message, login_refused=login_refused(message)) from None
    return AdbcPgTarget(connection=connection, dialect="postgresql", secret=url)
