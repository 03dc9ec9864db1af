"""A stalled writer process (issue 29, item 6): with two writer processes, one is really SIGSTOPped as it
starts a chunk (fault point `stall_writer`). The run must not wait for it for ever: it fails within the
writer bound (target query + connect timeout + a margin, claims_etl/engine/writers.py) with one error
line naming the writer and the settings, kills the writer, leaves no process behind, and a plain rerun
recovers every claim exactly once (docs/operations.md, Timeouts)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress

import psutil
import pytest

from claims_etl.engine.writers import stall_bound_seconds
from claims_etl.settings import Settings
from tests.db import FAULTY_CLI
from tests.helpers import CLAIMS, Reader, assert_exactly_once_and_exact, assert_reconciled, cli_env, run_cli
from tests.seeding import seeded_fixture

TIMEOUTS = {"CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS": "3", "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS": "3"}
# From the stop to the run's exit: the bound, then the kill's grace and the failed run's bookkeeping.
SLACK = 10.0


seeded = seeded_fixture(CLAIMS, seed=47, invalid_rate=0.1)


def _watch_until_stopped(run: subprocess.Popen[str], family: dict[int, psutil.Process]) -> psutil.Process:
    """Poll the run's descendants (its fork server and writers), remembering each one seen, until one is
    stopped."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        with suppress(psutil.NoSuchProcess):
            family.update({child.pid: child for child in psutil.Process(run.pid).children(recursive=True)})
        for process in list(family.values()):
            with suppress(psutil.NoSuchProcess):
                if process.status() == psutil.STATUS_STOPPED:
                    return process
        time.sleep(0.05)
    raise AssertionError(f"no writer was stopped: {run.communicate()[1] if run.poll() is not None else 'run hangs'}")


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_stopped_writer_fails_the_run_within_its_bound_then_a_rerun_recovers(
    seeded: Settings, read_target: Reader, record_property: Callable[[str, object], None]
) -> None:
    bound = stall_bound_seconds(
        seeded.model_copy(update={"target_query_timeout_seconds": 3, "target_connect_timeout_seconds": 3})
    )
    assert bound == 11.0
    env = cli_env(seeded, CLAIMS_ETL_LOAD_CONNECTIONS="2", CLAIMS_ETL_FAULT="stall_writer:2", **TIMEOUTS)
    run = subprocess.Popen([*FAULTY_CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    family: dict[int, psutil.Process] = {}
    try:
        writer = _watch_until_stopped(run, family)
        stopped_at = time.monotonic()
        _, stderr = run.communicate(timeout=bound + SLACK)  # TimeoutExpired: the run waits for the writer
        failed_after = time.monotonic() - stopped_at
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
            for process in family.values():  # a stopped writer cannot notice its run is gone
                with suppress(psutil.NoSuchProcess):
                    process.kill()
    record_property("seconds_from_stop_to_exit", round(failed_after, 2))  # in --junitxml: the measured time to fail
    assert run.returncode == 1, stderr
    assert bound is not None and failed_after < bound + SLACK
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    silent = float(re.search(r"no sign of life for ([0-9.]+) s", lines[0])[1])  # type: ignore[index]
    assert bound <= silent < bound + SLACK  # what the watchdog measured (to 0.1 s), not this test's view of the stop
    assert f"warehouse writer process {writer.pid} stalled writing chunk 2" in lines[0], lines[0]
    assert (
        "CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS" in lines[0]
        and "CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS" in lines[0]
    )
    _assert_all_gone(family)
    repaired = run_cli(seeded, load_connections=2)
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["claims_recovered"] > 0  # the failed run's leases, taken over
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


def _assert_all_gone(family: dict[int, psutil.Process]) -> None:
    """The run's writers and fork server end with it (the healthy writer kills itself when the run is
    gone); a few seconds for them to notice."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p in family.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"left behind: {[(p.pid, p.status()) for p in left]}")
