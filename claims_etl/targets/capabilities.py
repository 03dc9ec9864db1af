"""What each warehouse dialect can do and needs, as data: the code reads these fields, never a
dialect's name. Adding a dialect is one `Capabilities` entry in `CAPABILITIES` plus its DDL file
(queries/db/create_warehouse.<name>.sql, or `ddl` naming another's).

The connection-string defaults, with their reasons:
- psqlODBC: one round trip per row unless server-side prepare is off (benchmarks/LOG.md), and
  Debian's odbcinst.ini logs every statement, claim data included, to /tmp unless CommLog=0.
- MariaDB: strings go as narrow UTF-8 (prefer_unicode slows inserts), so say it is UTF-8. Its driver
  logs every call, statements included, to ~/maodbc.log when bit 4 of OPTIONS is set (Debug,
  MADB_OPT_FLAG_DEBUG), in the string or in a DSN: OPTIONS is added without it
  (`options_cleared`, targets/odbc_strings.py). TRACE is the driver's own trace switch. (unixODBC's
  trace: claims_etl/targets/odbc_config.py.)

Timeouts (docs/operations.md, Timeouts): turbodbc exposes neither SQL_ATTR_LOGIN_TIMEOUT nor
SQL_ATTR_QUERY_TIMEOUT, so each driver gets its own keywords.
- MariaDB Connector/ODBC ignores both attributes; its C connector's socket timeouts (seconds without
  a byte from the server, while reading a reply or sending a statement) are what it has.
- ODBC Driver for SQL Server: `ConnectTimeout` (18.7 and later) is the login timeout; no keyword
  bounds a statement (its own keepalives, 30 s idle by default, find a dead server).
- psqlODBC connects through libpq, and passes `pqopt` to it whole: libpq's connect timeout and
  keepalives, and the server's statement timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

# A dialect's name: a key of CAPABILITIES ("mssql", "postgresql", "mysql").
Dialect: TypeAlias = str


@dataclass(frozen=True)
class Capabilities:
    """One warehouse dialect, as the connection, the statements and the load need to know it."""

    name: str
    # Fragments of an ODBC driver's registered name or library that select this dialect (case-folded).
    driver_fragments: tuple[str, ...]
    # sqlglot's name for the dialect (tests parse the warehouse queries with it).
    sqlglot_dialect: str
    # The schema warehouse tables live in; None where the target has no schemas (the database is it).
    schema: str | None = "warehouse"
    # Connection-string attributes added where the user's string does not set them.
    driver_defaults: dict[str, str] = field(default_factory=dict)
    # OPTIONS bits cleared from the DSN's OPTIONS, added to the string (None: OPTIONS left alone).
    options_cleared: int | None = None
    # Wide strings (SQL Server: its narrow strings use the server's code page); narrow UTF-8 elsewhere.
    prefer_unicode: bool = False
    # The query reading the session's packet limit, where one applies (every parameter array is then
    # cut to fit it, targets/packets.py); None: the server takes any batch.
    packet_limit_query: str | None = None
    # Keywords set to the connect timeout and to the query timeout, each unless the user set it.
    login_timeout_keywords: tuple[str, ...] = ()
    query_timeout_keywords: tuple[str, ...] = ()
    # The driver hands `pqopt` to libpq: timeouts and keepalives go there (psqlODBC).
    timeouts_through_pqopt: bool = False
    # arrow-odbc reads may set SQL_ATTR_LOGIN_TIMEOUT (psqlODBC refuses it beside pqopt's
    # connect_timeout; MariaDB's driver ignores it, its CONN_TIMEOUT in the string bounds the login).
    login_timeout_attribute: bool = False
    # The fence check (warehouse/run_fence_chunk) updating no row means fenced: MariaDB in a non-strict
    # sql_mode stores 0 instead of raising the NOT NULL violation the other dialects raise.
    no_row_fenced: bool = False
    # The warehouse DDL, queries/db/create_warehouse.<ddl>.sql; None: the dialect's own name.
    ddl: str | None = None

    @property
    def ddl_query(self) -> str:
        """The query name of the warehouse DDL (`sql.statements` loads it)."""
        return f"db/create_warehouse.{self.ddl or self.name}"

    def table(self, name: str) -> str:
        """A warehouse table's qualified name: in the schema where the target has schemas."""
        return f"{self.schema}.{name}" if self.schema else name


CAPABILITIES: dict[Dialect, Capabilities] = {
    entry.name: entry
    for entry in (
        Capabilities(
            name="mssql",
            driver_fragments=("sql server", "msodbcsql", "freetds", "tdsodbc"),
            sqlglot_dialect="tsql",
            prefer_unicode=True,
            login_timeout_keywords=("ConnectTimeout",),
            login_timeout_attribute=True,
        ),
        Capabilities(
            name="postgresql",
            driver_fragments=("postgres", "psqlodbc"),
            sqlglot_dialect="postgres",
            driver_defaults={"UseServerSidePrepare": "0", "BatchSize": "100", "CommLog": "0", "Debug": "0"},
            timeouts_through_pqopt=True,
        ),
        Capabilities(
            name="mysql",
            driver_fragments=("mariadb", "maodbc", "mysql"),
            sqlglot_dialect="mysql",
            schema=None,
            driver_defaults={"CHARSET": "utf8mb4", "TRACE": "0"},
            options_cleared=4,  # MADB_OPT_FLAG_DEBUG
            packet_limit_query="warehouse/packet_limit.mysql",
            login_timeout_keywords=("CONN_TIMEOUT",),
            query_timeout_keywords=("READ_TIMEOUT", "WRITE_TIMEOUT"),
            no_row_fenced=True,
        ),
    )
}


def capabilities(dialect: Dialect) -> Capabilities:
    """The dialect's entry (a KeyError for a name no entry has: settings allow only known ones)."""
    return CAPABILITIES[dialect]


def dialect_of_driver(driver: str) -> Dialect | None:
    """The dialect whose fragment the driver's name or library holds, the longest fragment winning
    (the most specific: a dialect registered for one library of a driver another dialect names)."""
    lowered = driver.lower()
    matches = [
        (len(fragment), entry.name)
        for entry in CAPABILITIES.values()
        for fragment in entry.driver_fragments
        if fragment in lowered
    ]
    return max(matches, key=lambda match: match[0])[1] if matches else None
