"""Quoting and secrets on the real databases: quoted values are safe with `standard_conforming_strings`
off, a connectorx panic is one scrubbed line, connection strings come from files, and neither
unixODBC's trace nor the MariaDB driver's debug log is written whatever the user's ODBC files ask."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from claims_etl.db import sql
from claims_etl.db.source import init_source
from claims_etl.db.source_reads import read_frame
from claims_etl.errors import SourceError
from claims_etl.settings import Settings
from claims_etl.stages.extract import read_pending
from tests.db import MARIADB_HOST, RUN_DATE, SOURCE_URL, TEST_DB, cli_env, run_cli
from tests.seeding import seeded_fixture

PASSWORD = "Qu0te-S3cret_pw"
SCS_OFF = "?options=-c%20standard_conforming_strings%3Doff"  # libpq options, honoured by connectorx
HOSTILE_BATCH = "\\' IS NOT NULL OR 1=1) --"  # with plain '' quoting and the setting off: every claim
AWKWARD = ["a\\b", "\\", "\\'", "'\\'", "x\\' OR '1'='1", "C:\\new\\table", "é\\x41\\n", "--\\;"]


seeded = seeded_fixture(60, seed=71, invalid_rate=0.1)


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_quoted_text_round_trips_exactly_with_standard_conforming_strings_off(settings: Settings) -> None:
    scs_off = settings.model_copy(update={"source_url": SecretStr(SOURCE_URL + SCS_OFF)})
    setting = read_frame(scs_off, "SELECT current_setting('standard_conforming_strings') AS s", stage="extract")
    assert setting.item() == "off"
    for value in AWKWARD:
        assert read_frame(scs_off, f"SELECT {sql.quote(value)}::text AS v", stage="extract").item() == value
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("SET standard_conforming_strings = off")
        for value in AWKWARD:
            row = connection.execute(f"SELECT {sql.quote(value)}::text").fetchone()
            assert row is not None and row[0] == value


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_hostile_batch_id_cannot_inject_with_standard_conforming_strings_off(seeded: Settings) -> None:
    scs_off = seeded.model_copy(update={"source_url": SecretStr(SOURCE_URL + SCS_OFF)})
    awkward_batch = "B\\'7"
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET batch_id = %s WHERE claim_id %% 5 = 0", [awkward_batch])
        wanted = connection.execute("SELECT count(*) FROM staging.claims WHERE claim_id % 5 = 0").fetchone()
    assert read_pending(scs_off).claims.height == 60
    assert read_pending(scs_off, batch_id=HOSTILE_BATCH).claims.height == 0
    selected = read_pending(scs_off, batch_id=awkward_batch).claims
    assert wanted is not None and selected.height == wanted[0] > 0
    assert set(selected.get_column("batch_id")) == {awkward_batch}


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_connectorx_panic_is_one_scrubbed_source_error(settings: Settings, capfd: pytest.CaptureFixture[str]) -> None:
    with_password = settings.model_copy(
        update={"source_url": SecretStr(f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{TEST_DB}")}
    )
    capfd.readouterr()
    with pytest.raises(SourceError, match="panicked: not implemented: point") as raised:
        read_frame(with_password, "SELECT point(1, 2) AS p", stage="extract")  # a type connectorx cannot convert
    assert PASSWORD not in str(raised.value)
    out, err = capfd.readouterr()
    assert out + err == ""  # the panic's own report did not reach stderr


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_run_whose_reader_panics_exits_1_with_one_line_without_the_password(seeded: Settings) -> None:
    """A column the run reads turns into a type connectorx cannot convert in the staging view (a DBA's
    change). Not a poison row: every read fails, rows or none, so the run fails (stages/extract.py)."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        definition = connection.execute("SELECT pg_get_viewdef('staging.etl_claims')").fetchone()
        assert definition is not None
        body = definition[0].rstrip().rstrip(";")
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' "
            "AND table_name = 'etl_claims' ORDER BY ordinal_position"
        ).fetchall()
        drifted = ", ".join("point(1, 2) AS diagnosis_4" if c == "diagnosis_4" else f"v.{c}" for (c,) in columns)
        connection.execute("DROP VIEW IF EXISTS staging.etl_rows, staging.etl_claims")
        connection.execute(f"CREATE VIEW staging.etl_claims AS SELECT {drifted} FROM ({body}) v")
    try:
        env = cli_env(seeded, CLAIMS_ETL_SOURCE_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{TEST_DB}")
        result = run_cli(env)
    finally:
        with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
            connection.execute("DROP VIEW IF EXISTS staging.etl_rows, staging.etl_claims")
        init_source(seeded)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "panicked" in lines[0], result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_connection_strings_from_files_run_without_any_in_the_environment(
    seeded: Settings, target_name: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "source-url", tmp_path / "target-odbc"
    source.write_text(f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{TEST_DB}\n")
    target.write_text(seeded.target_odbc.get_secret_value() + "\n")
    for secret in (source, target):
        secret.chmod(0o600)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOG_FORMAT": "console",
        "CLAIMS_ETL_SOURCE_URL_FILE": str(source),
        "CLAIMS_ETL_TARGET_ODBC_FILE": str(target),
    }
    result = run_cli(env)
    assert result.returncode == 0, result.stderr
    assert '"claims_read": 60' in result.stdout
    assert result.stderr.strip() == "" and PASSWORD not in result.stdout


def _odbc_user_files(home: Path, trace: Path) -> None:
    """The user's ODBC files ask for everything: unixODBC's trace, and MariaDB's debug log in a DSN."""
    home.mkdir()
    (home / ".odbcinst.ini").write_text(f"[ODBC]\nTrace=Yes\nTraceFile={trace}\n")
    (home / ".odbc.ini").write_text(
        f"[claims_h19]\nDriver=MariaDB Unicode\nServer={MARIADB_HOST}\nPort=3306\nDatabase={TEST_DB}\n"
        "User=claims_etl\nOPTION=4\n"
    )


@pytest.fixture
def trace_file() -> Iterator[Path]:
    """A short path: unixODBC ignores a TraceFile path as long as pytest's tmp_path."""
    directory = Path(tempfile.mkdtemp(prefix="h19t", dir="/tmp"))
    yield directory / "odbc.log"
    shutil.rmtree(directory)


def test_odbc_traces_asked_for_in_the_users_files_are_not_written(
    seeded: Settings, target_name: str, tmp_path: Path, trace_file: Path
) -> None:
    home = tmp_path / "home"
    _odbc_user_files(home, trace_file)
    odbc = "DSN=claims_h19;Password=;" if target_name == "mysql" else seeded.target_odbc.get_secret_value()
    env = cli_env(seeded, HOME=str(home), ODBCINI=str(home / ".odbc.ini"), CLAIMS_ETL_TARGET_ODBC=odbc)
    result = run_cli(env)
    assert result.returncode == 0, result.stderr
    assert not trace_file.exists()
    assert sorted(path.name for path in home.iterdir()) == [".odbc.ini", ".odbcinst.ini"]  # no maodbc.log
    probe = subprocess.run(  # the same files do make a plain ODBC client trace: the test would see it
        [sys.executable, "-c", f"import turbodbc; turbodbc.connect(connection_string={odbc!r}).close()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert trace_file.exists()
    assert (home / "maodbc.log").exists() == (target_name == "mysql")
