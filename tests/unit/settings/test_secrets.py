"""Secrets without a database: connection strings from files (`CLAIMS_ETL_*_FILE`), a warning for a
password in a flag (the process list shows flags), unixODBC's trace switched off in the private
configuration; the same on the real databases is in tests/integration/settings/test_secrets_on_servers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings
from claims_etl.targets.odbc_config import without_tracing
from tests.unit.cli.test_app import PASSWORD, assert_one_clear_line, cli

URL = f"postgresql://etl:{PASSWORD}@127.0.0.1:1/claims_etl"


def test_a_secret_setting_is_read_from_the_file_its_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "source").write_text(f"  {URL}\n")
    (tmp_path / "target").write_text(f"Driver={{X}};UID=etl;PWD={PASSWORD}\n")
    for variable in ("CLAIMS_ETL_SOURCE_URL", "CLAIMS_ETL_TARGET_ODBC"):  # `make test` exports them
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CLAIMS_ETL_SOURCE_URL_FILE", str(tmp_path / "source"))
    monkeypatch.setenv("CLAIMS_ETL_TARGET_ODBC_FILE", str(tmp_path / "target"))
    settings = Settings()
    assert settings.source_url.get_secret_value() == URL  # stripped
    assert settings.target_odbc.get_secret_value() == f"Driver={{X}};UID=etl;PWD={PASSWORD}"
    assert Settings(source_url="postgresql://other@h/db").source_url.get_secret_value() == "postgresql://other@h/db"


def test_a_secret_in_both_its_variable_and_a_file_or_in_no_readable_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "source").write_text(URL)
    monkeypatch.setenv("CLAIMS_ETL_SOURCE_URL_FILE", str(tmp_path / "source"))
    monkeypatch.setenv("CLAIMS_ETL_SOURCE_URL", URL)
    with pytest.raises(ConfigurationError, match="CLAIMS_ETL_SOURCE_URL or CLAIMS_ETL_SOURCE_URL_FILE, not both"):
        Settings()
    monkeypatch.delenv("CLAIMS_ETL_SOURCE_URL")
    monkeypatch.setenv("CLAIMS_ETL_SOURCE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=r"CLAIMS_ETL_SOURCE_URL_FILE: cannot read .*missing"):
        Settings()


def test_a_missing_secret_file_is_a_usage_error_on_the_command_line(tmp_path: Path) -> None:
    result = cli("report", env={"CLAIMS_ETL_SOURCE_URL_FILE": str(tmp_path / "missing")})
    assert_one_clear_line(result, 2, "CLAIMS_ETL_SOURCE_URL_FILE: cannot read")


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        (["report"], "--source-url", URL),
        (
            ["db", "init", "--source-url", "postgresql://etl@127.0.0.1:1/x"],
            "--target-odbc",
            f"Driver={{X}};PWD={PASSWORD}",
        ),
        (["db", "init", "--source-url", "postgresql://etl@127.0.0.1:1/x"], "--target-url", URL),
    ],
)
def test_a_password_in_a_flag_gets_one_warning_without_it(command: list[str], flag: str, value: str) -> None:
    result = cli(*command, flag, value)
    assert result.returncode == 1, result.stderr  # the source is unreachable: one error line after the warning
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    warnings = [line for line in lines if line.startswith("warning:")]
    variable = {
        "--source-url": "CLAIMS_ETL_SOURCE_URL",
        "--target-odbc": "CLAIMS_ETL_TARGET_ODBC",
        "--target-url": "CLAIMS_ETL_TARGET_URL",
    }[flag]
    assert len(warnings) == 1 and flag in warnings[0] and f"{variable}_FILE" in warnings[0], result.stderr
    assert len(lines) == 2 and lines[1].startswith("error:"), result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_a_flag_without_a_password_gets_no_warning() -> None:
    result = cli("report", "--source-url", "postgresql://etl@127.0.0.1:1/claims_etl")
    assert_one_clear_line(result, 1, "cannot reach the source database")


@pytest.mark.parametrize(
    ("odbcinst", "private"),
    [
        (
            "[ODBC]\nTrace=Yes\nTraceFile=/tmp/sql.log\nPooling=No\n\n[MariaDB Unicode]\nDriver=libmaodbc.so\n",
            "[ODBC]\nTrace=No\nPooling=No\n\n[MariaDB Unicode]\nDriver=libmaodbc.so\n",
        ),
        (  # a driver section's own keys are the driver's: kept
            "[MariaDB Unicode]\nDriver=libmaodbc.so\nTrace=Yes\n",
            "[ODBC]\nTrace=No\n\n[MariaDB Unicode]\nDriver=libmaodbc.so\nTrace=Yes\n",
        ),
        ("[odbc]\n ForceTrace = 1\n trace=on\n", "[odbc]\nTrace=No\n"),
        ("", "[ODBC]\nTrace=No\n\n"),
    ],
)
def test_the_private_odbc_configuration_has_tracing_off_and_everything_else(odbcinst: str, private: str) -> None:
    assert without_tracing(odbcinst) == private
    assert without_tracing(private) == private  # a copy of a copy is the same file
