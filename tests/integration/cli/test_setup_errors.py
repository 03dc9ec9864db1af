"""Setup and usage mistakes are one line and exit 2, saying what to do (issue 29, item 9): a source
database not set up (`run claims-etl db init`), a refused login (no password shown), a SQL_ASCII
source, a count above bigint and an empty `[V11] codes` list. Exit 1 would tell a scheduler to retry
(docs/operations.md); retrying cannot fix any of these."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.db import MARIADB_HOST, PG_ADMIN_URL, SOURCE_URL, TARGETS, TEST_DB, claims_etl_cli, cli_env, make_settings

BIGINT_MAX = 2**63 - 1
COMMANDS = [["run"], ["db", "init"], ["reference", "list"]]


def _one_error_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def fresh_database(databases: dict[str, bool], request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own, created with the options in `request.param` (dropped afterwards); its URL."""
    name = f"{TEST_DB}_setup"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name} {request.param}")
    yield SOURCE_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    "fresh_database", ["ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"], indirect=True
)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_sql_ascii_source_is_one_line_saying_it_must_be_utf8(fresh_database: str, command: list[str]) -> None:
    result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=fresh_database), *command)
    assert "encoding is SQL_ASCII: it must be UTF8" in _one_error_line(result)


@pytest.mark.parametrize("fresh_database", [""], indirect=True)
@pytest.mark.parametrize(
    "command", [["run"], ["run", "--dry-run"], ["reference", "list"], ["report"], ["reconcile"]], ids=" ".join
)
def test_a_source_without_db_init_is_one_line_saying_to_run_it(fresh_database: str, command: list[str]) -> None:
    result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=fresh_database), *command)
    assert _one_error_line(result).endswith("run claims-etl db init"), result.stderr


@pytest.mark.parametrize("fresh_database", [""], indirect=True)
def test_a_warehouse_without_db_init_is_one_line_saying_to_run_it(
    fresh_database: str, databases: dict[str, bool]
) -> None:
    """The source set up, the warehouse a database `db init` never ran on: PostgreSQL through psqlODBC
    and by URL (COPY), and MariaDB."""
    settings = make_settings()
    assert claims_etl_cli(cli_env(settings), "db", "init").returncode == 0
    fresh = fresh_database.rsplit("/", 1)[1]
    warehouses = [
        (
            "psqlODBC",
            "CLAIMS_ETL_TARGET_ODBC",
            TARGETS["postgresql"].replace(f"Database={TEST_DB};", f"Database={fresh};"),
        ),
        ("PostgreSQL by URL", "CLAIMS_ETL_TARGET_URL", fresh_database),
    ]
    if databases["mysql"]:
        made = subprocess.run(
            [
                "mysql",
                "-h",
                MARIADB_HOST,
                "-uclaims_etl",
                "-e",
                f"DROP DATABASE IF EXISTS {fresh}; CREATE DATABASE {fresh}",
            ],
            capture_output=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        odbc = TARGETS["mysql"].replace(f"Database={TEST_DB};", f"Database={fresh};")
        warehouses.append(("MariaDB", "CLAIMS_ETL_TARGET_ODBC", odbc))
    try:
        for warehouse, variable, value in warehouses:
            line = _one_error_line(claims_etl_cli(cli_env(settings, **{variable: value}), "run"))
            assert line.endswith("the warehouse is not set up (no table etl_runs): run claims-etl db init"), warehouse
    finally:
        subprocess.run(
            ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-e", f"DROP DATABASE IF EXISTS {fresh}"], check=False
        )


@pytest.mark.parametrize("fresh_database", [""], indirect=True)
def test_db_init_then_run_works_on_the_fresh_database(fresh_database: str) -> None:
    env = cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=fresh_database)
    assert claims_etl_cli(env, "db", "init").returncode == 0
    assert claims_etl_cli(env, "run", "--dry-run").returncode == 0


def test_a_refused_source_login_is_one_line_without_the_password(databases: dict[str, bool]) -> None:
    """The real server refusing an unknown role; no retries (it answers at once)."""
    url = SOURCE_URL.replace("postgres@", "no_such_role_h29:Wr0ngPw_h29@")
    for command in COMMANDS:
        result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=url), *command)
        line = _one_error_line(result)
        assert "the source database refused the login" in line and "Wr0ngPw_h29" not in result.stderr + result.stdout


class _PasswordRefusingServer:
    """Speaks just enough of PostgreSQL's protocol to ask for a password and refuse it (SQLSTATE 28P01),
    as a server with password authentication does: the local one trusts every local connection."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with client:
                self._refuse(client)

    @staticmethod
    def _refuse(client: socket.socket) -> None:
        while True:  # SSL and GSS encryption requests get "N"; then the startup message
            length, code = struct.unpack("!ii", client.recv(8, socket.MSG_WAITALL))
            if code not in (80877103, 80877104):
                client.recv(length - 8, socket.MSG_WAITALL)
                break
            client.sendall(b"N")
        client.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        client.recv(4096)  # the password message
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "postgres"\0\0'
        client.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self._listener.close()


def test_a_wrong_source_password_is_one_line_exit_2_without_the_password(databases: dict[str, bool]) -> None:
    server = _PasswordRefusingServer()
    try:
        url = f"postgresql://postgres:Wr0ngPw_h29@127.0.0.1:{server.port}/{TEST_DB}?sslmode=disable"
        result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_SOURCE_URL=url), "run")
    finally:
        server.close()
    line = _one_error_line(result)
    assert "refused the login" in line and "password authentication failed" in line, line
    assert "Wr0ngPw_h29" not in result.stderr + result.stdout


def test_a_wrong_warehouse_password_is_one_line_exit_2_without_the_password(databases: dict[str, bool]) -> None:
    """The real MariaDB refusing a password its user does not have, and the real PostgreSQL an unknown
    role for a warehouse by URL."""
    if not databases["mysql"]:
        pytest.skip("MariaDB is not reachable")
    settings = make_settings("mysql")
    odbc = settings.target_odbc.get_secret_value().replace("Password=;", "Password=Wr0ngPw_h29;")
    pg_url = SOURCE_URL.replace("postgres@", "no_such_role_h29:Wr0ngPw_h29@")
    for env in (cli_env(settings, CLAIMS_ETL_TARGET_ODBC=odbc), cli_env(settings, CLAIMS_ETL_TARGET_URL=pg_url)):
        assert claims_etl_cli(cli_env(settings), "db", "init").returncode == 0
        result = claims_etl_cli(env, "run")
        assert "the warehouse refused the login" in _one_error_line(result), result.stderr
        assert "Wr0ngPw_h29" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "arguments",
    [["--limit", str(BIGINT_MAX + 1)], ["--range-claims", str(BIGINT_MAX + 1)], ["--limit", str(2**64)]],
    ids=["limit", "range-claims", "limit-2^64"],
)
def test_counts_above_bigint_are_bad_usage(databases: dict[str, bool], arguments: list[str]) -> None:
    result = claims_etl_cli(cli_env(make_settings()), "run", *arguments)
    assert "less than or equal to 9223372036854775807" in _one_error_line(result)
    result = claims_etl_cli(cli_env(make_settings(), CLAIMS_ETL_LIMIT=str(BIGINT_MAX + 1)), "run", "--dry-run")
    assert "limit" in _one_error_line(result)


def test_counts_at_bigint_max_are_accepted(databases: dict[str, bool]) -> None:
    env = cli_env(make_settings())
    assert claims_etl_cli(env, "db", "init").returncode == 0
    result = claims_etl_cli(env, "run", "--dry-run", "--limit", str(BIGINT_MAX), "--range-claims", str(BIGINT_MAX))
    assert result.returncode == 0, result.stderr


def test_an_empty_v11_code_list_is_refused(databases: dict[str, bool], tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[V11]\ncodes = []\n", encoding="utf-8")
    for command in (["rules", "list"], ["run", "--dry-run"]):
        result = claims_etl_cli(cli_env(make_settings()), *command, "--rules", str(rules))
        assert "V11.codes" in _one_error_line(result)
