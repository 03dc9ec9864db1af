"""SQL lives in `queries/<owner>/<purpose>[.<dialect>].sql`; this module loads it by name
(`load("leases/lease_pending")`).

connectorx has no bind parameters, so values that reach its queries go through `render`, the one
quoting helper. psycopg and turbodbc statements bind parameters instead and are used as loaded, or
with their `{slot}` identifiers (tables, column lists) filled by `with_identifiers`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from functools import cache
from importlib.resources import files

# The top-level queries/ folder, installed as the package claims_etl.queries (pyproject.toml).
QUERIES = files("claims_etl.queries")
_COMMENT = re.compile(r"--[^\n]*")
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)\b")
_SLOT = re.compile(r"\{([a-z_]+)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")

SqlValue = str | int | date | None


@cache
def load(name: str) -> str:
    """The text of `queries/<name>.sql`, e.g. `load("source/lock_run")`."""
    resource = QUERIES.joinpath(*f"{name}.sql".split("/"))
    if not resource.is_file():
        raise FileNotFoundError(f"no query file {name}.sql in queries/")
    return resource.read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """A query file split into its statements (no `;` or `--` inside literals or identifiers)."""
    without_comments = _COMMENT.sub("", load(name))
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def quote(value: SqlValue) -> str:
    r"""A SQL literal for PostgreSQL, the same whatever `standard_conforming_strings` is: text is an
    escape string (`E'...'`), whose backslashes are escapes under either setting, so both backslashes
    and quotes are escaped (a plain '...' literal reads a backslash as an escape with the setting off,
    where `\'` would end it early and let the rest of the value run as SQL).

    >>> print(quote("x\\' OR 1=1 --"))
    E'x\\'' OR 1=1 --'
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("booleans are not SQL literals here")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if "\x00" in value:
        raise ValueError("a SQL literal cannot contain a NUL character")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def render(name: str, **values: SqlValue) -> str:
    """Query `name` with every `:placeholder` replaced by the quoted value; all must be given."""
    text = _COMMENT.sub("", load(name))  # a placeholder inside a comment must not become live SQL
    missing = set(_PLACEHOLDER.findall(text)) - values.keys()
    if missing:
        raise KeyError(f"{name}.sql needs values for {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)]), text)


def slots(name: str) -> list[str]:
    """The `{slot}` identifier names of query `name`, in order of first use."""
    return list(dict.fromkeys(_SLOT.findall(_COMMENT.sub("", load(name)))))


def with_identifiers(name: str, **identifiers: str | Sequence[str]) -> str:
    """Query `name` without its comments, each `{slot}` filled with an identifier: a table, or a list of
    columns joined by commas. Only plain or schema-qualified names are accepted, so no value can reach
    SQL text this way; values are bound as parameters.

    >>> with_identifiers("db/copy_csv", table="staging.rvu", columns=["year", "hcpcs"])
    'COPY staging.rvu (year, hcpcs) FROM STDIN WITH (FORMAT csv)'
    """
    text = _COMMENT.sub("", load(name)).strip()
    missing = set(slots(name)) - identifiers.keys()
    if missing:
        raise KeyError(f"{name}.sql needs identifiers for {sorted(missing)}")

    def identifier(match: re.Match[str]) -> str:
        value = identifiers[match.group(1)]
        names = [value] if isinstance(value, str) else list(value)
        if not names or not all(_IDENTIFIER.match(each) for each in names):
            raise ValueError(f"{name}.sql: {match.group(1)} must be identifiers, got {names!r}")
        return ", ".join(names)

    return _SLOT.sub(identifier, text)
