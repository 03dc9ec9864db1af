"""Ctrl-C and SIGTERM (issue 29, item 7): a real signal sent to a real `claims-etl run` paused at a fault
point (claims_etl/dev/fault_hooks.py) stops it in order. Exit 130 or 143, one line on stderr saying it was
interrupted (console and JSON), the run recorded failed with the note `interrupted` and the counts it
committed, its leases released so the next run takes the rest at once as new work, and after that run
every claim is in the warehouse once, exact, and `claims-etl reconcile` finds no difference. A failed
run records its error's class, stage and message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from claims_etl.settings import Settings
from tests import db
from tests.db import SOURCE_URL, read_source, start_paused_run
from tests.helpers import (
    CHUNK,
    CLAIMS,
    Reader,
    assert_exactly_once_and_exact,
    assert_reconciled,
    cli_env,
    run_cli,
)
from tests.seeding import seeded_fixture

# Stopping is the engine's, not a target's: MariaDB by default, the COPY target with the slow tests
# (tests/integration/crash/conftest.py), the crash trials covering every target's transactions.
pytestmark = pytest.mark.parametrize("target_name", ["mysql", "postgresql-copy"], indirect=True)
# the crash trials' claims (tests/integration/crash/test_crash.py)
seeded = seeded_fixture(CLAIMS, seed=31, invalid_rate=0.1)


def _start(env: dict[str, str], paused: Path) -> subprocess.Popen[str]:
    return start_paused_run(env, paused, own_group=True)


def _assert_group_ends(group: int) -> None:
    """Nothing the run started stays: its process group (the fork server its writers came from) empties."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of the run's group {group} outlived it")


def _report(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    shown = db.claims_etl_cli(db.cli_env(settings), "report", *([run_id] if run_id else []), "--json")
    assert shown.returncode == 0, shown.stderr
    report: dict[str, Any] = json.loads(shown.stdout)
    return report


def _committed(read_target: Reader, run_id: str) -> tuple[int, int]:
    """The run's claims in the warehouse: (priced, rejected)."""
    priced = read_target(f"SELECT count(*) AS n FROM warehouse.priced_claims WHERE run_id = '{run_id}'").item()
    rejected = read_target(f"SELECT count(*) AS n FROM warehouse.rejected_claims WHERE run_id = '{run_id}'").item()
    return int(priced), int(rejected)


def _assert_interrupted(
    settings: Settings, read_target: Reader, run: subprocess.Popen[str], signum: int, log_format: str
) -> tuple[dict[str, Any], int]:
    """The stopped run's exit code, its one stderr line, its record; returns its report and the claims
    it committed."""
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, stderr
    assert stdout == "", stdout
    said = [line for line in stderr.splitlines() if "interrupted" in line.lower() and "run finished" not in line]
    assert len(said) == 1, stderr
    if log_format == "console":  # on a console that line is all of stderr
        assert stderr.strip().splitlines() == said and said[0].startswith("interrupted: run "), stderr
    else:  # every line JSON; the interruption is the last, the failure line of the JSON format
        lines = [json.loads(line) for line in stderr.splitlines()]
        assert lines[-1]["event"] == "failed" and lines[-1]["exit_code"] == 128 + signum, lines[-1]
        assert lines[-1]["error_class"] == "RunInterruptedError" and lines[-1]["run_id"], lines[-1]
        closing = lines[-2]  # the run's closing event, before the command's failure line
        assert (closing["event"], closing["outcome"], closing["run_id"]) == (
            "run finished",
            "interrupted",
            lines[-1]["run_id"],
        )
    report = _report(settings)
    run_id = report["run_id"]
    assert (report["status"], report["note"]) == ("failed", "interrupted"), report
    assert report["error"]["class"] == "RunInterruptedError", report
    assert signal.Signals(signum).name in report["error"]["message"]
    priced, rejected = _committed(read_target, run_id)
    assert (report["claims_priced"], report["claims_rejected"]) == (priced, rejected), report
    broken = read_target(f"SELECT rule_ids FROM warehouse.rejected_claims WHERE run_id = '{run_id}'")
    by_rule = broken.get_column("rule_ids").str.split(",").explode().value_counts(name="n")
    assert report["metrics"]["rejections_by_rule"] == dict(by_rule.iter_rows())  # of the claims committed
    load = next(stage for stage in report["stages"] if stage["stage"] == "load")
    assert load["rows_out"] == priced + rejected + report["claims_quarantined"]
    # Throughput of a run that did not finish: its committed claims over its wall time, as exact as the
    # summary's rounding allows (claims/s to 0.1, seconds to 0.0001, which weighs more the shorter the run).
    committed, seconds = priced + rejected, report["seconds"]
    rounding = 0.05 + committed * 0.00005 / (seconds - 0.00005) ** 2
    assert report["claims_per_second"] == pytest.approx(committed / seconds, abs=rounding + 1e-9)
    assert read_source(f"SELECT count(*) AS n FROM staging.range_leases WHERE run_id = '{run_id}'").item() == 0
    done = read_source("SELECT count(*) AS n FROM staging.claims WHERE status <> 'pending'").item()
    assert done == priced + rejected  # marked in the source: exactly what the warehouse has
    return report, priced + rejected


def _assert_the_next_run_completes(settings: Settings, read_target: Reader, committed: int) -> None:
    """The next run takes the claims left pending at once, as new work (nothing to recover)."""
    rest = run_cli(settings)
    assert rest.returncode == 0, rest.stderr
    summary = json.loads(rest.stdout)
    assert (summary["claims_read"], summary["claims_recovered"]) == (CLAIMS - committed, 0), summary
    assert_exactly_once_and_exact(settings, read_target)
    assert_reconciled(settings)


@pytest.mark.parametrize(
    ("signum", "log_format"),
    [(signal.SIGINT, "console"), (signal.SIGTERM, "json")],
    ids=["sigint-console", "sigterm-json"],
)
def test_a_signal_between_chunks_stops_the_run_in_order(
    seeded: Settings,
    read_target: Reader,
    tmp_path: Path,
    signum: int,
    log_format: str,
) -> None:
    paused = tmp_path / "paused"
    env = cli_env(
        seeded,
        CLAIMS_ETL_FAULT="pause_before_write:3",
        CLAIMS_ETL_FAULT_PAUSE="120",  # ended by the stop request, not waited out
        CLAIMS_ETL_FAULT_ONCE_FILE=str(paused),
        CLAIMS_ETL_LOG_FORMAT=log_format,
    )
    run = _start(env, paused)
    started = time.monotonic()
    run.send_signal(signum)
    stopped, committed = _assert_interrupted(seeded, read_target, run, signum, log_format)
    assert time.monotonic() - started < 60  # the pause did not run out
    assert committed == 2 * CHUNK  # chunks 1 and 2, written before the pause at chunk 3
    _assert_the_next_run_completes(seeded, read_target, committed)

    # What a person sees: the history charts draw the stopped run at its committed claims/s, and its
    # HTML report says why it failed.
    history = {each["run_id"]: each for each in _report(seeded)["charts"]["history"]}
    assert history[stopped["run_id"]]["status"] == "failed (interrupted)"
    assert history[stopped["run_id"]]["claims_per_second"] == stopped["claims_per_second"]
    page = tmp_path / "stopped.html"
    shown = db.claims_etl_cli(db.cli_env(seeded), "report", stopped["run_id"], "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    assert (
        "failed (interrupted)" in page.read_text()
        and f"RunInterruptedError in load: stopped by {signal.Signals(signum).name}" in page.read_text()
    )


def test_a_signal_during_a_write_lets_that_chunk_commit(
    seeded: Settings,
    read_target: Reader,
    tmp_path: Path,
) -> None:
    """SIGTERM (a service manager's stop) sent while chunk 2's warehouse transaction is open (one table
    inserted): that chunk commits and is marked, none after it is written."""
    paused = tmp_path / "paused"
    env = cli_env(
        seeded,
        CLAIMS_ETL_FAULT="pause_during_write:2",
        CLAIMS_ETL_FAULT_PAUSE="120",
        CLAIMS_ETL_FAULT_ONCE_FILE=str(paused),
    )
    run = _start(env, paused)
    run.send_signal(signal.SIGTERM)
    _, committed = _assert_interrupted(seeded, read_target, run, signal.SIGTERM, "console")
    assert committed == 2 * CHUNK
    _assert_the_next_run_completes(seeded, read_target, committed)


def test_ctrl_c_at_the_terminal_with_writer_processes(
    seeded: Settings,
    read_target: Reader,
    tmp_path: Path,
) -> None:
    """SIGINT to the run's whole process group, as a terminal's Ctrl-C sends it, while a writer process
    is inside chunk 2's transaction: the writers are not interrupted (the run decides), the chunks in
    flight commit and are marked, and the writers end with the run."""
    paused = tmp_path / "paused"
    env = cli_env(
        seeded,
        CLAIMS_ETL_FAULT="pause_during_write:2",
        CLAIMS_ETL_FAULT_PAUSE="2",  # in the writer, which no signal reaches: it sleeps it out
        CLAIMS_ETL_FAULT_ONCE_FILE=str(paused),
        CLAIMS_ETL_LOAD_CONNECTIONS="2",
    )
    run = _start(env, paused)
    os.killpg(run.pid, signal.SIGINT)
    _, committed = _assert_interrupted(seeded, read_target, run, signal.SIGINT, "console")
    assert committed >= 2 * CHUNK  # chunk 2, in flight when the signal came, committed
    _assert_group_ends(run.pid)
    _assert_the_next_run_completes(seeded, read_target, committed)


def test_a_failed_run_records_its_error(seeded: Settings) -> None:
    """Not only interruptions: a run that fails records its error's class, stage and message."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:  # as if 2025 had never been loaded
        for table in ("rvu", "gpci", "reference_releases"):
            source.execute(f"DELETE FROM staging.{table} WHERE year = 2025")
    stopped = run_cli(seeded)
    assert stopped.returncode == 2, stopped.stderr
    report = _report(seeded)
    assert report["status"] == "failed" and "note" not in report, report
    error = report["error"]
    assert (error["class"], error["stage"]) == ("ConfigurationError", "lease"), error
    assert error["message"].startswith("no fee schedule release in force for pending claims' service dates in 2025")
    assert (report["claims_priced"], report["claims_rejected"], report["claims_per_second"]) == (0, 0, 0)
    assert_reconciled(seeded, claims=0)
