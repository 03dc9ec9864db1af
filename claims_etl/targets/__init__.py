"""The warehouse side: one `Target` protocol (targets/base.py), one module per kind of session
(targets/odbc.py: turbodbc over any ODBC dialect; targets/postgres.py: PostgreSQL by URL, COPY over
psycopg) and each dialect's capabilities as data (targets/capabilities.py). `connect_target` chooses
the kind from the settings: a target URL is PostgreSQL by COPY, else the ODBC string.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from claims_etl.db import sql
from claims_etl.settings import Settings
from claims_etl.targets import odbc, postgres
from claims_etl.targets.base import Target
from claims_etl.targets.capabilities import CAPABILITIES, Capabilities, Dialect
from claims_etl.targets.odbc import OdbcTarget
from claims_etl.targets.odbc_strings import target_dialect
from claims_etl.targets.postgres import PgTarget

__all__ = [
    "CAPABILITIES",
    "Capabilities",
    "Dialect",
    "OdbcTarget",
    "PgTarget",
    "Target",
    "connect_target",
    "init_target",
    "read_target_frame",
    "target_dialect",
]


def connect_target(settings: Settings, *, autocommit: bool = False) -> Target:
    """The warehouse session: with a target URL a psycopg one that loads by COPY (targets/postgres.py),
    else a turbodbc connection over the ODBC string (targets/odbc.py)."""
    if settings.target_url is not None:
        return postgres.connect(settings, autocommit=autocommit)
    return odbc.connect(settings, autocommit=autocommit)


def read_target_frame(
    settings: Settings, name: str, *, stage: str, parameters: Sequence[str] = (), **tables: str
) -> pl.DataFrame:
    """Warehouse query `name` (its `{slot}`s qualified tables, as `Target.statement` fills them) read
    into Polars: over psycopg with a target URL, else by arrow-odbc. Errors become one scrubbed
    TargetError."""
    read = postgres.read_frame if settings.target_url is not None else odbc.read_frame
    return read(settings, name, stage=stage, parameters=parameters, **tables)


def init_target(settings: Settings) -> Dialect:
    """Create the warehouse tables where missing, in the target's dialect."""
    target = connect_target(settings, autocommit=True)
    try:
        for statement in sql.statements(target.capabilities.ddl_query):
            target.execute(statement)
    finally:
        target.close()
    return target.dialect
