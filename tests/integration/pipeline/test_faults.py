"""Database faults and secrets: a connection broken from outside in the middle of a run fails the run
cleanly (exit 1, one line, nothing half-written) and a rerun completes; passwords and patient data
never appear in any output."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from claims_etl.settings import Settings
from tests.db import ALL_TARGET_NAMES, FAULTY_CLI, MARIADB_HOST, PG_ADMIN_URL, RUN_DATE, TEST_DB, read_source
from tests.helpers import CHUNK, CLAIMS, Reader, assert_exactly_once_and_exact, cli_env, run_cli
from tests.seeding import seeded_fixture

pytestmark = pytest.mark.parametrize("target_name", ALL_TARGET_NAMES, indirect=True)  # every target (issue 22)

PASSWORD = "Sup3r-S3cret_pw"
PATIENT_ID = "PHI-PATIENT-7734"
PATIENT_DOB = "1951-07-04"


def _a_patient_every_97_claims(settings: Settings) -> None:
    with psycopg.connect(settings.source_url.get_secret_value(), autocommit=True) as connection:
        connection.execute(
            "UPDATE staging.claims SET patient_id = %s, patient_dob = %s WHERE claim_id %% 97 = 0",
            [PATIENT_ID, PATIENT_DOB],
        )


seeded = seeded_fixture(CLAIMS, seed=41, invalid_rate=0.1, then=_a_patient_every_97_claims)


def _break_connections(target_name: str) -> None:
    """Kill the run's sessions server-side: its source session (application_name claims-etl) and its
    warehouse session, as a database restart or a network cut would."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND (application_name = 'claims-etl' OR application_name = '' OR application_name ILIKE '%%odbc%%')",
            [TEST_DB],
        )
    if target_name == "mysql":
        ids = subprocess.run(
            ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-N", "-e",
             f"SELECT id FROM information_schema.processlist WHERE db = '{TEST_DB}' AND id <> connection_id()"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        for connection_id in ids:
            subprocess.run(["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-e", f"KILL {connection_id}"], check=False)


@pytest.mark.parametrize("load_connections", ["1", "2"], ids=["run-session", "two-writer-processes"])
def test_connections_broken_mid_run_fail_cleanly_and_a_rerun_completes(
    seeded: Settings, read_target: Reader, target_name: str, load_connections: str
) -> None:
    env = cli_env(
        seeded,
        CLAIMS_ETL_FAULT="pause_before_write:3",
        CLAIMS_ETL_FAULT_PAUSE="4",
        CLAIMS_ETL_LOAD_CONNECTIONS=load_connections,
    )
    process = subprocess.Popen([*FAULTY_CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # in the pause before chunk 3 (4 s), reached soon after chunk 1 is marked: waited for, not slept, as
    # a loaded machine starts the run late
    deadline = time.monotonic() + 240
    while read_source("SELECT count(*) FROM staging.claims WHERE status <> 'pending'").item() < CHUNK:
        assert process.poll() is None and time.monotonic() < deadline, "the run never marked its first chunk"
        time.sleep(0.1)
    time.sleep(1)
    _break_connections(target_name)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    written = read_target("SELECT count(*) AS n FROM warehouse.priced_claims").item()
    written += read_target("SELECT count(*) AS n FROM warehouse.rejected_claims").item()
    assert written % CHUNK == 0 and written < CLAIMS  # whole chunks only: nothing half-written
    assert run_cli(seeded).returncode == 0
    assert_exactly_once_and_exact(seeded, read_target)


@pytest.fixture
def password_settings(seeded: Settings, target_name: str) -> dict[str, str]:
    """Connection strings that carry a password everywhere (trust auth ignores it on PostgreSQL;
    MariaDB gets a user that needs it)."""
    source = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{TEST_DB}"
    target = seeded.target_odbc.get_secret_value()
    if target_name == "postgresql-copy":
        return {"CLAIMS_ETL_SOURCE_URL": source, "CLAIMS_ETL_TARGET_URL": source}
    if target_name == "mysql":
        subprocess.run(
            ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-e",
             f"CREATE USER IF NOT EXISTS 'claims_etl_pw'@'%' IDENTIFIED BY '{PASSWORD}'; "
             f"CREATE USER IF NOT EXISTS 'claims_etl_pw'@'localhost' IDENTIFIED BY '{PASSWORD}'; "
             f"GRANT ALL ON {TEST_DB}.* TO 'claims_etl_pw'@'%'; "
             f"GRANT ALL ON {TEST_DB}.* TO 'claims_etl_pw'@'localhost'"],
            check=True,
        )  # fmt: skip
        target = target.replace("User=claims_etl;Password=;", f"User=claims_etl_pw;Password={PASSWORD};")
    else:
        target = f"{target};Pwd={PASSWORD}"
    return {"CLAIMS_ETL_SOURCE_URL": source, "CLAIMS_ETL_TARGET_ODBC": target}


def _all_output(*results: subprocess.CompletedProcess[str]) -> str:
    logs = "".join(Path(p).read_text(errors="replace") for p in glob.glob("/tmp/psqlodbc_*.log"))
    return "".join(r.stdout + r.stderr for r in results) + logs


def test_passwords_and_patient_data_never_appear_in_output(seeded: Settings, password_settings: dict[str, str]) -> None:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat()}
    env = base | password_settings

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claims_etl", *args], env=env | extra, capture_output=True, text=True, check=False
        )

    ok = cli("run", "--verbose", "--json")
    assert ok.returncode == 0, ok.stderr
    # the target's variable, and the text that names its host and its database (a URL or an ODBC string)
    key, host, database = (
        ("CLAIMS_ETL_TARGET_URL", "@127.0.0.1:", f"/{TEST_DB}")
        if "CLAIMS_ETL_TARGET_URL" in password_settings
        else ("CLAIMS_ETL_TARGET_ODBC", "Server=127.0.0.1", "Database=")
    )
    target = password_settings[key]
    failures = [
        cli("run", "--verbose", **{key: target.replace(host, host.replace("127.0.0.1", "127.0.0.9"))}),
        cli("run", CLAIMS_ETL_SOURCE_URL=password_settings["CLAIMS_ETL_SOURCE_URL"].replace("5432", "1")),
        cli("run", CLAIMS_ETL_SOURCE_URL=password_settings["CLAIMS_ETL_SOURCE_URL"].replace(TEST_DB, "no_such_db")),
        cli("db", "init", **{key: target.replace(database, database.replace("/", "/nope_").replace("=", "=nope_"))}),
    ]
    assert all(f.returncode == 1 for f in failures), [f.stderr for f in failures]
    output = _all_output(ok, *failures)
    for secret in (PASSWORD, PATIENT_ID, PATIENT_DOB):
        assert secret not in output
