"""All SQL lives in queries/<owner>/*.sql: the package holds no statement text, warehouse inserts bind
their columns in the load schema's order, and identifier slots take identifiers only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from claims_etl.db import sql
from claims_etl.stages.load import HISTORY_SCHEMA, LOAD_SCHEMAS
from claims_etl.targets import OdbcTarget

PACKAGE = Path(__file__).resolve().parents[3] / "claims_etl"
STATEMENT = re.compile(
    r"\b(INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\S+\s+SET|SELECT\b.*\bFROM|COPY\s+\S+\s*\()", re.I | re.S
)


def _code_strings(path: Path) -> list[str]:
    """String literals of a module that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_statement_text_in_the_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): text
        for path in PACKAGE.rglob("*.py")
        for text in _code_strings(path)
        if STATEMENT.search(text)
    }
    assert offenders == {}


@pytest.mark.parametrize("table", [*sorted(LOAD_SCHEMAS), "priced_claim_line_history"])
def test_warehouse_inserts_bind_the_load_schema_in_order(table: str) -> None:
    schema = LOAD_SCHEMAS.get(table, HISTORY_SCHEMA)
    statement = sql.with_identifiers(f"warehouse/insert_{table}", **{table: table})
    columns = re.search(r"\(([^?]*?)\)\s*VALUES", statement, re.S)
    assert columns is not None
    assert [c.strip() for c in columns.group(1).split(",")] == schema.names
    assert statement.count("?") == len(schema.names)


@pytest.mark.parametrize(("dialect", "qualified"), [("mysql", "etl_runs"), ("mssql", "warehouse.etl_runs")])
def test_target_statements_qualify_their_tables_per_dialect(dialect: str, qualified: str) -> None:
    target = OdbcTarget(connection=None, dialect=dialect, secret="")
    assert target.statement("warehouse/run_start").startswith(f"INSERT INTO {qualified} (run_id,")
    delete = target.statement("warehouse/delete_claims", table="rejected_claims")
    assert delete == f"DELETE FROM {qualified.replace('etl_runs', 'rejected_claims')} WHERE claim_id = ?"


@pytest.mark.parametrize("hostile", ["x; DROP TABLE t", "a b", "t --", "'t'", "", "a.b.c"])
def test_identifier_slots_refuse_anything_but_identifiers(hostile: str) -> None:
    with pytest.raises(ValueError, match="must be identifiers"):
        sql.with_identifiers("db/copy_csv", table=hostile, columns=["year"])
    with pytest.raises(ValueError, match="must be identifiers"):
        sql.with_identifiers("db/copy_csv", table="staging.rvu", columns=["year", hostile])


def test_identifier_slots_must_all_be_filled() -> None:
    with pytest.raises(KeyError, match="columns"):
        sql.with_identifiers("db/copy_csv", table="staging.rvu")


def test_every_query_file_loads_without_placeholders_in_comments() -> None:
    folder = Path(str(sql.QUERIES))
    names = sorted(str(path.relative_to(folder)).removesuffix(".sql") for path in folder.rglob("*.sql"))
    assert len(names) > 40
    for name in names:
        comments = " ".join(re.findall(r"--[^\n]*", sql.load(name)))
        assert "%(" not in comments and "?" not in comments, name  # drivers parse markers in comments too
