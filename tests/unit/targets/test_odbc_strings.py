"""Timeouts without a database: what each driver is given (the source's libpq conninfo and connectorx
URL, each ODBC driver's connection string), that the user's own values win, and that the settings
refuse a reply bound the statement timeout cannot fire within. On the real servers:
tests/integration/pipeline/test_hung_connections.py."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pydantic
import pytest
from pydantic import SecretStr

from claims_etl.db.source import connectorx_url, source_conninfo
from claims_etl.settings import Settings
from claims_etl.targets import Dialect
from claims_etl.targets.odbc_strings import odbc_attributes, target_connection_string

MARIADB = "Driver={MariaDB Unicode};Server=dw;Port=3306;Database=claims;User=etl;Password=;"
PSQLODBC = "Driver={PostgreSQL Unicode};Server=dw;Port=5432;Database=claims;Uid=etl"
MSSQL = "Driver={ODBC Driver 18 for SQL Server};Server=dw;Database=claims;UID=etl;PWD=x"


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(**{"ODBCSYSINI": str(tmp_path)} | values)  # type: ignore[arg-type]  # no system DSNs


def test_the_source_conninfo_carries_the_timeouts_and_keepalives_and_the_urls_own_values_win(tmp_path: Path) -> None:
    url = "postgresql://etl@staging:5432/claims?keepalives_idle=99&options=-c%20work_mem%3D64MB"
    conninfo = psycopg.conninfo.conninfo_to_dict(source_conninfo(_settings(tmp_path, source_url=url)))
    assert conninfo["connect_timeout"] == "10" and conninfo["keepalives_idle"] == "99"  # the URL's
    assert (conninfo["keepalives_interval"], conninfo["keepalives_count"], conninfo["tcp_user_timeout"]) == (
        "10",
        "3",
        "60000",  # libpq: milliseconds, idle + interval x count
    )
    assert conninfo["options"] == (
        "-c statement_timeout=300s -c lock_timeout=60s -c jit=off -c tcp_keepalives_idle=30 "
        "-c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 -c work_mem=64MB"  # the URL's options last: theirs win
    )


def test_the_connectorx_url_speaks_rust_postgres(tmp_path: Path) -> None:
    settings = _settings(tmp_path, source_url="postgresql://etl@staging:5432/claims?sslmode=require")
    url = connectorx_url(settings)
    assert url.startswith("postgresql://etl@staging:5432/claims?sslmode=require&connect_timeout=10&options=-c%20")
    assert "keepalives_retries=3" in url and "&keepalives_count" not in url  # rust-postgres' name
    assert url.endswith("&tcp_user_timeout=60")  # seconds there
    off = connectorx_url(settings.model_copy(update={"tcp_keepalives_idle_seconds": 0}))
    assert "keepalives=0" in off and "tcp_user_timeout" not in off and "tcp_keepalives" not in off


def test_each_odbc_driver_gets_its_own_timeout_keywords(tmp_path: Path) -> None:
    settings = _settings(tmp_path, target_connect_timeout_seconds=7, target_query_timeout_seconds=40)

    def attributes(odbc: str, dialect: Dialect) -> dict[str, str]:
        return odbc_attributes(
            target_connection_string(settings.model_copy(update={"target_odbc": SecretStr(odbc)}), dialect)
        )

    mariadb = attributes(MARIADB, "mysql")
    assert (mariadb["conn_timeout"], mariadb["read_timeout"], mariadb["write_timeout"]) == ("7", "40", "40")
    mssql = attributes(MSSQL, "mssql")
    assert mssql["connecttimeout"] == "7" and "read_timeout" not in mssql and "pqopt" not in mssql
    psql = attributes(PSQLODBC, "postgresql")
    assert psycopg.conninfo.conninfo_to_dict(psql["pqopt"]) == {
        "connect_timeout": "7",
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "tcp_user_timeout": "60000",
        "options": "-c statement_timeout=40s",
    }


@pytest.mark.parametrize(
    ("given", "dialect", "kept"),
    [
        (MARIADB + "READ_TIMEOUT=900", "mysql", {"read_timeout": "900", "write_timeout": "300"}),
        (MSSQL + ";ConnectTimeout=60", "mssql", {"connecttimeout": "60"}),
        (PSQLODBC + ";pqopt={sslrootcert=/etc/ca.pem}", "postgresql", {"pqopt": "sslrootcert=/etc/ca.pem"}),
    ],
)
def test_a_timeout_the_connection_string_sets_is_kept(
    tmp_path: Path, given: str, dialect: str, kept: dict[str, str]
) -> None:
    attributes = odbc_attributes(target_connection_string(_settings(tmp_path, target_odbc=given), dialect))  # type: ignore[arg-type]
    assert {key: attributes[key] for key in kept} == kept


def test_psqlodbc_keepalive_keywords_are_not_given_twice(tmp_path: Path) -> None:
    """psqlODBC hands KeepaliveTime to libpq as keepalives_idle, and refuses a differing one in pqopt."""
    settings = _settings(tmp_path, target_odbc=PSQLODBC + ";KeepaliveTime=120")
    pqopt = psycopg.conninfo.conninfo_to_dict(
        odbc_attributes(target_connection_string(settings, "postgresql"))["pqopt"]
    )
    assert "keepalives_idle" not in pqopt and pqopt["keepalives_interval"] == "10"


def test_a_reply_bound_within_the_statement_timeout_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="longer than source_statement_timeout_seconds"):
        Settings(source_statement_timeout_seconds=300, source_reply_timeout_seconds=300)
    assert (
        Settings(source_statement_timeout_seconds=0, source_reply_timeout_seconds=5).source_reply_timeout_seconds == 5
    )
