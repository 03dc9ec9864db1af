"""The SQL Server dialect is kept right by construction: SQL Server cannot run here (docs/spec.md §2),
so every T-SQL statement the engine can send (the warehouse DDL for mssql and every warehouse
statement, qualified as for SQL Server) must parse with sqlglot's T-SQL grammar and use none of the
PostgreSQL/MariaDB constructs that T-SQL lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ParseError

from claims_etl.db import sql
from claims_etl.targets import CAPABILITIES, OdbcTarget

WAREHOUSE = Path(str(sql.QUERIES)) / "warehouse"
MSSQL = CAPABILITIES["mssql"]
# Constructs sqlglot's T-SQL reader would quietly accept (it transpiles), but SQL Server rejects or
# reads differently (`timestamp` is a rowversion there, not a point in time).
NOT_TSQL = re.compile(
    r"\bLIMIT\b|\bIF\s+(NOT\s+)?EXISTS\b|\bON\s+CONFLICT\b|\bADD\s+COLUMN\b|::|\bnow\(\)|\bRETURNING\b"
    r"|\bboolean\b|\btext\b|\btimestamp\b|\bENGINE\s*=|`|\bAUTO_INCREMENT\b|\bSERIAL\b|\bILIKE\b",
    re.IGNORECASE,
)


def _tsql_statements() -> list[tuple[str, str]]:
    target = OdbcTarget(connection=None, dialect=MSSQL.name, secret="")
    ddl = [(MSSQL.ddl_query, statement) for statement in sql.statements(MSSQL.ddl_query)]
    names = sorted(f"warehouse/{path.stem}" for path in WAREHOUSE.glob("*.sql"))
    return ddl + [(name, target.statement(name, table="priced_claims")) for name in names]


def _check(statement: str) -> None:
    """Raise unless `statement` is T-SQL: it parses, and it holds no construct T-SQL lacks."""
    sqlglot.parse(statement, read=MSSQL.sqlglot_dialect, error_level=sqlglot.ErrorLevel.RAISE)
    found = NOT_TSQL.search(statement)
    if found:
        raise ParseError(f"not T-SQL: {found.group(0)!r}")


STATEMENTS = _tsql_statements()


def test_every_warehouse_statement_is_checked() -> None:
    checked = {name for name, _ in STATEMENTS}
    assert {f"warehouse/{path.stem}" for path in WAREHOUSE.glob("*.sql")} <= checked
    assert sum(name == MSSQL.ddl_query for name, _ in STATEMENTS) >= 8  # every table, migrations


@pytest.mark.parametrize(("name", "statement"), STATEMENTS, ids=[f"{n}:{i}" for i, (n, _) in enumerate(STATEMENTS)])
def test_the_statement_is_t_sql(name: str, statement: str) -> None:
    _check(statement)


@pytest.mark.parametrize(
    "wrong",
    [
        "CREATE TABLE IF NOT EXISTS warehouse.t (a int)",  # PostgreSQL/MariaDB DDL
        "ALTER TABLE warehouse.t ADD COLUMN IF NOT EXISTS y int",
        "SELECT a FROM warehouse.t LIMIT 10",
        "INSERT INTO warehouse.t (a) VALUES (?) ON CONFLICT DO NOTHING",
        "CREATE TABLE warehouse.t (at timestamp NOT NULL)",
        "INSERT INTO warehouse.t (a, b VALUES (?, ?)",  # does not parse at all
        "DELETE FROM warehouse.t WHERE claim_id = ? AND",
    ],
)
def test_the_check_refuses_what_sql_server_would(wrong: str) -> None:
    with pytest.raises(ParseError):
        _check(wrong)
