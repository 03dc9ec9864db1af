"""Warehouse dialects as data (claims_etl/targets/capabilities.py): the drivers each one is chosen by,
the most specific fragment winning, and what the entries say about qualification and DDL."""

from __future__ import annotations

import dataclasses

import pytest

from claims_etl.db import sql
from claims_etl.targets import CAPABILITIES
from claims_etl.targets.capabilities import dialect_of_driver


@pytest.mark.parametrize(
    ("driver", "dialect"),
    [
        ("ODBC Driver 18 for SQL Server", "mssql"),
        ("libmsodbcsql-18.3.so.3.1", "mssql"),
        ("FreeTDS", "mssql"),
        ("PostgreSQL Unicode", "postgresql"),
        ("psqlodbcw.so", "postgresql"),
        ("MariaDB Unicode", "mysql"),
        ("libmaodbc.so", "mysql"),
        ("MySQL ODBC 8.0 Unicode Driver", "mysql"),
        ("Some Other Driver", None),
        ("", None),
    ],
)
def test_the_driver_selects_its_dialect(driver: str, dialect: str | None) -> None:
    assert dialect_of_driver(driver) == dialect


def test_the_longest_fragment_wins_whatever_the_registry_order() -> None:
    CAPABILITIES["seam"] = dataclasses.replace(CAPABILITIES["mysql"], name="seam", driver_fragments=("libmaodbc",))
    try:
        assert dialect_of_driver("libmaodbc.so") == "seam"
        assert dialect_of_driver("MariaDB Unicode") == "mysql"
    finally:
        del CAPABILITIES["seam"]


def test_every_dialect_has_its_ddl_and_qualifies_its_tables() -> None:
    for entry in CAPABILITIES.values():
        assert sql.statements(entry.ddl_query)
        assert entry.table("etl_runs") == ("etl_runs" if entry.schema is None else f"{entry.schema}.etl_runs")
    assert CAPABILITIES["mysql"].table("etl_runs") == "etl_runs"
    assert CAPABILITIES["mssql"].table("etl_runs") == "warehouse.etl_runs"
