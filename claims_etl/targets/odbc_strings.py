"""The ODBC warehouse's connection string: the user's, plus its dialect's defaults and the timeouts
the user did not set (the reasons per driver: targets/capabilities.py), and the dialect itself, from
the settings or the ODBC driver in use."""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

from claims_etl.db.source import client_keepalives
from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings
from claims_etl.targets.capabilities import Capabilities, Dialect, capabilities, dialect_of_driver

# A timeout's words in a warehouse driver's message, and the setting that bounds that wait.
TARGET_TIMEOUTS = (
    # MariaDB: its READ/WRITE_TIMEOUT expiring and a server closing the connection read alike (2013)
    ("lost connection to server during query", "no reply within CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS, or closed"),
    ("at 'handshake", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
    ("statement timeout", "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS"),
    ("query timeout expired", "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS"),
    ("login timeout expired", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
    ("timeout expired", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS"),
)


def odbc_attributes(connection_string: str) -> dict[str, str]:
    """Key=value pairs of an ODBC connection string (keys case-folded; `{...}` values unwrapped)."""
    pairs = re.findall(r"\s*([^=;]+?)\s*=\s*(\{[^}]*\}|[^;]*)\s*(?:;|$)", connection_string)
    return {key.lower(): value.strip("{}") for key, value in pairs}


def _dsn_setting(settings: Settings, dsn: str, key: str) -> str:
    """A setting of a DSN from the user's and the system's odbc.ini (what unixODBC reads); "" if none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read([Path(settings.odbc_sysini) / "odbc.ini", Path(os.path.expanduser("~/.odbc.ini"))])
    return parser.get(dsn, key, fallback="") if dsn and parser.has_section(dsn) else ""


def _driver_defaults(settings: Settings, dialect: Capabilities, present: dict[str, str]) -> dict[str, str]:
    """The dialect's defaults; OPTIONS as the DSN has them but without the bits the dialect clears
    (MariaDB's debug log)."""
    defaults = dict(dialect.driver_defaults)
    if dialect.options_cleared is not None and not {"option", "options"} & present.keys():
        dsn = present.get("dsn", "")
        configured = (_dsn_setting(settings, dsn, "options") or _dsn_setting(settings, dsn, "option")).strip()
        options = int(configured) if configured.isdigit() else 0
        defaults["OPTIONS"] = str(options & ~dialect.options_cleared)
    return defaults


def target_dialect(settings: Settings) -> Dialect:
    """The warehouse's SQL dialect: PostgreSQL for a target URL, the explicit setting, else the ODBC
    driver's name."""
    if settings.target_url is not None:
        return "postgresql"
    if settings.target_dialect:
        return settings.target_dialect
    attributes = odbc_attributes(settings.target_odbc.get_secret_value())
    driver = attributes.get("driver") or _dsn_setting(settings, attributes.get("dsn", ""), "Driver")
    dialect = dialect_of_driver(driver)
    if dialect is None:
        raise ConfigurationError(
            "cannot tell the warehouse's SQL dialect from CLAIMS_ETL_TARGET_ODBC "
            f"(driver {driver or 'not named'!r}); set CLAIMS_ETL_TARGET_DIALECT to mssql, postgresql or mysql"
        )
    return dialect


def _set_by_user(settings: Settings, present: dict[str, str], *keys: str) -> bool:
    """Whether the connection string or its DSN sets any of `keys` (case-folded)."""
    dsn = present.get("dsn", "")
    return any(key in present or _dsn_setting(settings, dsn, key) for key in keys)


def _timeout_attributes(settings: Settings, dialect: Capabilities, present: dict[str, str]) -> dict[str, str]:
    """Connection-string attributes bounding the driver's waits, where the string or its DSN does not
    set them (docs/operations.md, Timeouts): the dialect's keywords, or libpq's options in `pqopt`."""
    login, query = str(settings.target_connect_timeout_seconds), str(settings.target_query_timeout_seconds)
    if dialect.timeouts_through_pqopt:
        return _pqopt(settings, present, login, query)
    wanted = dict.fromkeys(dialect.login_timeout_keywords, login) | dict.fromkeys(dialect.query_timeout_keywords, query)
    return {key: value for key, value in wanted.items() if not _set_by_user(settings, present, key.lower())}


def _pqopt(settings: Settings, present: dict[str, str], login: str, query: str) -> dict[str, str]:
    """libpq's connect timeout and keepalives, and the server's statement timeout, as psqlODBC's
    `pqopt` (a KeepaliveTime/KeepaliveInterval the user set is the driver's own spelling of the same
    libpq setting: left out, or libpq refuses the conflict)."""
    if _set_by_user(settings, present, "pqopt", "d5"):
        return {}
    libpq = {"connect_timeout": login} | client_keepalives(settings, rust=False)
    if _set_by_user(settings, present, "keepalivetime", "d1"):
        libpq.pop("keepalives_idle", None)
    if _set_by_user(settings, present, "keepaliveinterval", "d2"):
        libpq.pop("keepalives_interval", None)
    parameters = [f"{key}={value}" for key, value in libpq.items()]
    return {"pqopt": "{" + " ".join([*parameters, f"options='-c statement_timeout={query}s'"]) + "}"}


def target_connection_string(settings: Settings, dialect: Dialect) -> str:
    """The configured ODBC string, plus the driver defaults and timeouts the user did not set."""
    text = settings.target_odbc.get_secret_value().strip().rstrip(";")
    present = odbc_attributes(text)
    entry = capabilities(dialect)
    defaults = _driver_defaults(settings, entry, present) | _timeout_attributes(settings, entry, present)
    extra = [f"{key}={value}" for key, value in defaults.items() if key.lower() not in present]
    return ";".join([text, *extra])
