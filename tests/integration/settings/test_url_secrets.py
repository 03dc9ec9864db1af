"""Passwords in malformed connection URLs (issue 29, item 3): an unencoded `@`, a bad `%` escape or a
space in a password made the drivers split the URL in the wrong place and echo pieces of it. Such a
URL is refused before any driver parses it (exit 2, one line naming the setting, none of the URL), and
a driver given one anyway (the Python API's `model_copy` skips validation) has every form of the
password scrubbed from its error."""

from __future__ import annotations

import re
import subprocess
import urllib.parse

import pytest
from pydantic import SecretStr

from claims_etl.db.source import source_connection
from claims_etl.db.source_reads import read_frame
from claims_etl.errors import SourceError
from claims_etl.settings import Settings
from tests.db import PG_HOST, TEST_DB, claims_etl_cli, cli_env, make_settings

# (password as written in the URL, why a driver cannot take it); the third also looks like the host.
MALFORMED = [
    ("Se@cretAA9", "an @"),
    ("Se%ZZcretBB9", "a % not followed by two hex digits"),
    ("sp ace9Q", "a space"),
    ("Zx9@127.0.0.1:5432", "an @"),
]
COMMANDS = [["run"], ["db", "init"], ["reference", "list"]]


def _url(password: str, database: str = TEST_DB) -> str:
    return f"postgresql://postgres:{password}@{PG_HOST}:5432/{database}"


def _forms(password: str) -> list[str]:
    """The password as written and percent-decoded, and their pieces between `@` or spaces (what a driver
    that split the URL there echoes; pieces under 3 characters are not scrubbed): none may show anywhere."""
    whole = [password, urllib.parse.unquote(password)]
    return whole + [piece for form in whole for piece in re.split(r"[@\s]", form) if len(piece) >= 3]


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("password", "problem"), MALFORMED)
def test_a_malformed_source_url_is_refused_without_its_password(
    databases: dict[str, bool], command: list[str], password: str, problem: str
) -> None:
    result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=_url(password)), *command)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert line.startswith("error: source_url: ") and problem in line, line
    for form in _forms(password):
        assert form not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("CLAIMS_ETL_TARGET_URL", _url("Se@cretAA9")),
        ("CLAIMS_ETL_REDIS_URL", "redis://:Se%ZZcretBB9@127.0.0.1:6379/0"),
    ],
    ids=["target", "redis"],  # not the URL: it names the database, which differs between xdist's workers
)
def test_a_malformed_target_or_redis_url_is_refused_without_its_password(
    databases: dict[str, bool], variable: str, url: str
) -> None:
    result = claims_etl_cli(cli_env(make_settings(), **{variable: url}), "run")
    assert result.returncode == 2, result.stderr
    assert "Se@cretAA9" not in result.stderr and "Se%ZZcretBB9" not in result.stderr
    assert variable.removeprefix("CLAIMS_ETL_").lower() in _one_error_line(result)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_password_like_the_host_is_not_shown_by_the_real_server_error(
    databases: dict[str, bool], command: list[str]
) -> None:
    """A well-formed URL whose password reads like its host and port: the server's refusal (no such
    database) names the host, never the password."""
    password = urllib.parse.quote(f"{PG_HOST}:5432", safe="")
    result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=_url(password, "no_such_db_h29")), *command)
    assert result.returncode in (1, 2), result.stderr
    assert "no_such_db_h29" in _one_error_line(result)
    for form in _forms(password):
        assert form not in result.stdout + result.stderr


@pytest.mark.parametrize(("password", "problem"), MALFORMED)
def test_the_drivers_errors_on_a_malformed_url_are_scrubbed(
    databases: dict[str, bool], password: str, problem: str
) -> None:
    """Below the settings check: psycopg and connectorx given the URL anyway echo pieces of it, and every
    form of the password is scrubbed from what they say."""
    settings = make_settings().model_copy(update={"source_url": SecretStr(_url(password))})
    with pytest.raises(SourceError) as connecting, source_connection(settings):
        pass
    errors: list[Exception] = [connecting.value]
    try:  # connectorx takes the last `@` as the host's (trust auth here: it may connect)
        read_frame(settings, "SELECT 1 AS x", stage="extract")
    except SourceError as reading:
        errors.append(reading)
    for error in errors:
        for form in _forms(password):
            assert form not in str(error), error
    with pytest.raises(Exception, match="percent-encode it") as refused:
        Settings(source_url=_url(password))
    assert all(form not in str(refused.value) for form in _forms(password))
