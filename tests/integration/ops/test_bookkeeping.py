"""Bookkeeping: a run SIGKILLed stays `running` only until the next run starts, which marks it failed
(killed) in the run log and in etl_runs, while a run still alive is left alone; `claims-etl reconcile`
finds every planted difference between the source's statuses and the warehouse, by claim id only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from claims_etl import targets
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests.db import FAULTY_CLI, PG_ADMIN_URL, SOURCE_URL, TEST_DB, read_source
from tests.helpers import CLAIMS, Reader, assert_reconciled, cli_env, reconcile, run_cli
from tests.seeding import seeded_fixture

PATIENT_ID = "PHI-PATIENT-5521"


def _one_patient(settings: Settings) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET patient_id = %s", [PATIENT_ID])


seeded = seeded_fixture(CLAIMS, seed=81, invalid_rate=0.1, then=_one_patient)


def _run_log(run_id: str) -> tuple[str, dict[str, Any]]:
    with psycopg.connect(SOURCE_URL) as connection:
        row = connection.execute(
            "SELECT status, summary FROM staging.etl_run_log WHERE run_id = %s", [run_id]
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env=cli_env(settings, COLUMNS="200"), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_killed_run_is_marked_failed_killed_by_the_next_run(seeded: Settings, read_target: Reader) -> None:
    crashed = run_cli(seeded, "after_extract")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    killed = read_source("SELECT run_id FROM staging.etl_run_log WHERE status = 'running'").get_column("run_id")
    assert killed.len() == 1
    killed_id = killed.item()

    repaired = run_cli(seeded)
    assert repaired.returncode == 0, repaired.stderr

    status, summary = _run_log(killed_id)
    assert (status, summary["status"], summary["note"]) == ("failed", "failed", "killed")
    runs = read_target(f"SELECT status, finished_at FROM warehouse.etl_runs WHERE run_id = '{killed_id}'")
    assert runs.get_column("status").to_list() == ["failed"] and runs.get_column("finished_at").null_count() == 0
    report = _cli(seeded, "report", killed_id, "--json")
    assert report.returncode == 0, report.stderr
    assert (json.loads(report.stdout)["status"], json.loads(report.stdout)["note"]) == ("failed", "killed")
    dashboard = _cli(seeded, "dashboard", "--once")
    assert dashboard.returncode == 0 and "failed (killed)" in dashboard.stdout, dashboard.stdout
    assert _run_log(json.loads(repaired.stdout)["run_id"])[0] == "succeeded"
    assert_reconciled(seeded)


def test_a_run_still_alive_is_not_marked_killed(seeded: Settings) -> None:
    env = cli_env(seeded, CLAIMS_ETL_FAULT="pause_before_write:1", CLAIMS_ETL_FAULT_PAUSE="6")
    paused = subprocess.Popen(
        [*FAULTY_CLI, "run", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = read_source("SELECT run_id FROM staging.etl_run_log WHERE status = 'running'")
            if running.height:
                break
            time.sleep(0.2)
        assert running.height == 1
        paused_id = running.get_column("run_id").item()
        other = run_cli(seeded)  # finds every claim leased to the paused run: nothing to do
        assert other.returncode == 0, other.stderr
        assert json.loads(other.stdout)["claims_read"] == 0
        assert _run_log(paused_id)[0] == "running"
    finally:
        _, err = paused.communicate(timeout=120)
    assert paused.returncode == 0, err
    assert _run_log(paused_id)[0] == "succeeded"
    assert "note" not in _run_log(paused_id)[1]


def _forget_runs() -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("TRUNCATE staging.etl_run_log")


@pytest.fixture
def pg_seeded(pg_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Seeded claims and an empty run log, emptied again after the test: a killed run it leaves
    `running` (no next run marks it) must not look like another test's run."""
    seed(pg_settings, CLAIMS, seed=81, invalid_rate=0.1, directory=tmp_path)
    _forget_runs()
    yield pg_settings
    _forget_runs()


def _sessions(lock_mode: str | None = None) -> list[int]:
    """The engine's sessions on the test database; with `lock_mode`, those holding an advisory lock so."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT DISTINCT a.pid FROM pg_stat_activity AS a LEFT JOIN pg_locks AS l ON l.pid = a.pid "
            "AND l.locktype = 'advisory' AND l.granted WHERE a.datname = %s AND a.application_name = 'claims-etl' "
            "AND (%s::text IS NULL OR l.mode = %s::text)",
            [TEST_DB, lock_mode, lock_mode],
        ).fetchall()
    return [int(row[0]) for row in rows]


def _status(settings: Settings, run_id: str) -> tuple[str, str | None]:
    report = _cli(settings, "report", run_id, "--json")
    assert report.returncode == 0, report.stderr
    shown = json.loads(report.stdout)
    return shown["status"], shown.get("note")


def test_a_killed_run_shows_failed_killed_at_once_before_any_next_run(pg_seeded: Settings) -> None:
    crashed = run_cli(pg_seeded, "during_write:2")  # SIGKILLed mid-load
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    killed_id = read_source("SELECT run_id FROM staging.etl_run_log WHERE status = 'running'").get_column("run_id")
    deadline = time.monotonic() + 30
    while _sessions():  # the server ends a dead client's sessions, and frees their locks, on its own time
        assert time.monotonic() < deadline, "the killed run's sessions never ended"
        time.sleep(0.1)

    assert _status(pg_seeded, killed_id.item()) == ("failed", "killed")
    latest = json.loads(_cli(pg_seeded, "report", "--json").stdout)
    assert (latest["run_id"], latest["status"], latest["note"]) == (killed_id.item(), "failed", "killed")
    dashboard = _cli(pg_seeded, "dashboard", "--once")
    assert dashboard.returncode == 0 and "failed (killed)" in dashboard.stdout, dashboard.stdout
    assert "runs in progress: 0" in dashboard.stdout
    assert _run_log(killed_id.item())[0] == "running"  # shown at read time; the next run marks the log


def test_a_run_that_lost_its_run_lock_but_lives_shows_running_then_its_own_end(pg_seeded: Settings) -> None:
    """Its log lock (held until its last status is written) tells a live run from a killed one: so
    a run between its source session's end and its final status never shows as killed."""
    env = cli_env(pg_seeded, CLAIMS_ETL_FAULT="pause_before_write:1", CLAIMS_ETL_FAULT_PAUSE="10")
    paused = subprocess.Popen(
        [*FAULTY_CLI, "run", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        priced = "SELECT run_id FROM staging.etl_run_log WHERE status = 'running' AND summary->'progress' ? 'price'"
        while (run_id := read_source(priced).get_column("run_id")).is_empty():  # its one range priced: it pauses
            assert paused.poll() is None and time.monotonic() < deadline, "the run never priced its range"
            time.sleep(0.1)
        paused.send_signal(signal.SIGSTOP)  # in its pause: alive, and held there however slow the machine
        run_lock = _sessions("ShareLock")
        assert len(run_lock) == 1, run_lock
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [run_lock[0]])
        assert _status(pg_seeded, run_id.item()) == ("running", None)
        assert "runs in progress: 1" in _cli(pg_seeded, "dashboard", "--once").stdout
    finally:
        paused.send_signal(signal.SIGCONT)
        _, err = paused.communicate(timeout=120)
    assert paused.returncode == 1, err  # its source session is gone: the run fails, and says so itself
    assert _status(pg_seeded, run_id.item()) == ("failed", None)


def _plant_both_tables(settings: Settings, claim_id: int) -> None:
    """A priced claim also written to rejected_claims, as a double-writing bug would."""
    target = targets.connect_target(settings, autocommit=True)
    try:
        target.execute(
            f"INSERT INTO {target.table('rejected_claims')} (claim_id, batch_id, run_id, rule_ids, rejected_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [claim_id, "planted", "planted", "V01", "2026-01-01 00:00:00"],
        )
    finally:
        target.close()


def test_reconcile_finds_planted_differences_by_claim_id_only(seeded: Settings) -> None:
    assert run_cli(seeded).returncode == 0
    assert_reconciled(seeded)
    statuses = read_source("SELECT claim_id, status FROM staging.claims ORDER BY claim_id")
    processed = statuses.filter(statuses["status"] == "processed").get_column("claim_id").to_list()
    rejected = statuses.filter(statuses["status"] == "rejected").get_column("claim_id").to_list()
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET status = 'pending' WHERE claim_id = %s", [processed[0]])
        connection.execute("UPDATE staging.claims SET status = 'processed' WHERE claim_id = %s", [rejected[0]])
    _plant_both_tables(seeded, processed[1])

    code, report = reconcile(seeded)

    assert code == 1 and report["consistent"] is False
    found = {d["check"]: d["claim_ids"] for d in report["differences"] if d["count"]}
    assert found == {
        "processed_not_in_priced_claims": [rejected[0]],
        "in_both_warehouse_tables": [processed[1]],
        "pending_in_warehouse_not_in_flight": [processed[0]],
        "rejected_not_rejected": sorted([rejected[0], processed[1]]),
    }
    assert report["source_statuses"]["pending"] == 1
    text = _cli(seeded, "reconcile")
    assert text.returncode == 1 and "DIFFERENCES" in text.stdout and str(processed[1]) in text.stdout
    assert PATIENT_ID not in json.dumps(report) + text.stdout + text.stderr


def test_reconcile_lists_at_most_20_ids_and_counts_them_all(seeded: Settings) -> None:
    assert run_cli(seeded).returncode == 0
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET status = 'pending' WHERE status = 'processed'")
    code, report = reconcile(seeded)
    pending = next(d for d in report["differences"] if d["check"] == "pending_in_warehouse_not_in_flight")
    assert code == 1 and pending["count"] == report["source_statuses"]["pending"] > 20
    assert len(pending["claim_ids"]) == 20 and pending["claim_ids"] == sorted(pending["claim_ids"])


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_reconcile_errors_are_one_scrubbed_line(seeded: Settings) -> None:
    env = cli_env(seeded)
    env["CLAIMS_ETL_TARGET_ODBC"] = env["CLAIMS_ETL_TARGET_ODBC"].replace("Password=;", "Password=wr0ng-pw;")
    result = subprocess.run(
        [sys.executable, "-m", "claims_etl", "reconcile"],
        env=env | {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "wr0ng-pw" not in result.stdout + result.stderr
