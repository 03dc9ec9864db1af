"""What every warehouse session offers (`Target`, the protocol the stages and the engine write
through) and what the two kinds share (`Session`: the connection, its dialect's capabilities, table
names and statements). The kinds: targets/odbc.py (turbodbc, any ODBC dialect) and
targets/postgres.py (PostgreSQL by URL, COPY over psycopg)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from claims_etl.db import sql
from claims_etl.errors import ClaimsEtlError, ConfigurationError, TargetError
from claims_etl.targets.capabilities import Capabilities, Dialect, capabilities

if TYPE_CHECKING:
    import pyarrow as pa


class Target(Protocol):
    """An open warehouse session. A chunk's writes (`insert_rows`, `delete_claims`, `fenced`) run in
    the open transaction and raise the driver's errors (the caller maps them with `errors`)."""

    connection: Any
    dialect: Dialect
    secret: str

    @property
    def capabilities(self) -> Capabilities: ...

    def table(self, name: str) -> str: ...

    def statement(self, name: str, **tables: str) -> str: ...

    def close(self) -> None: ...

    def rollback_quietly(self) -> None: ...

    def execute(self, statement: str, parameters: list[Any] | None = None) -> None: ...

    def execute_many(self, statement: str, rows: list[list[Any]]) -> None: ...

    def commit(self) -> None: ...

    def insert_rows(self, table: str, rows: pa.Table) -> None: ...

    def delete_claims(self, tables: Sequence[str], keys: pa.Table) -> None: ...

    def fenced(self, counts: list[Any]) -> bool: ...

    def reconnect(self) -> None: ...

    def errors(self, what: str) -> AbstractContextManager[None]: ...


@dataclass
class Session:
    """A connection on the warehouse and its dialect, which names its tables and fills its statements."""

    connection: Any  # the driver's connection (turbodbc's or psycopg's)
    dialect: Dialect
    secret: str

    @property
    def capabilities(self) -> Capabilities:
        return capabilities(self.dialect)

    def table(self, name: str) -> str:
        """A warehouse table's qualified name: schema `warehouse` where the target has schemas."""
        return self.capabilities.table(name)

    def statement(self, name: str, **tables: str) -> str:
        """Warehouse query `name` with each `{slot}` a qualified table name: the slot's own name, or
        the table given for it (`statement("warehouse/delete_claims", table="priced_claims")`)."""
        return qualified_statement(self.capabilities, name, **tables)

    def commit(self) -> None:
        self.connection.commit()


def qualified_statement(dialect: Capabilities, name: str, **tables: str) -> str:
    """Query `name` with each `{slot}` the dialect's qualified name of its table (`Session.statement`)."""
    return sql.with_identifiers(name, **{slot: dialect.table(tables.get(slot, slot)) for slot in sql.slots(name)})


def connection_failed(message: str, *, login_refused: bool, sqlstate: str | None = None) -> ClaimsEtlError:
    """A warehouse session that could not be opened, as every kind reports it (`message` scrubbed
    already): a refused login is configuration (exit 2), which retrying cannot help; anything else
    is the warehouse out of reach."""
    if login_refused:
        return ConfigurationError(f"the warehouse refused the login (check its user and password): {message}")
    return TargetError("connect", f"cannot reach the warehouse: {message}", sqlstate=sqlstate)
