"""The writer bound's pieces without a database (claims_etl/engine/writers.py): the formula, a silent
writer found from its heartbeat, and a stopped process really ended. The whole path, with a real
SIGSTOPped writer and a rerun: tests/integration/pipeline/test_stalled_writer.py."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import pytest

from claims_etl.engine import writers
from claims_etl.settings import Settings


@pytest.mark.parametrize(("query", "connect", "bound"), [(300, 15, 320.0), (3, 3, 11.0), (0, 15, None), (300, 0, None)])
def test_the_bound_is_query_plus_connect_timeout_plus_the_margin_and_off_with_either(
    query: int, connect: int, bound: float | None
) -> None:
    settings = Settings(target_query_timeout_seconds=query, target_connect_timeout_seconds=connect)
    assert writers.stall_bound_seconds(settings) == bound


def test_a_writer_whose_heartbeat_is_older_than_the_bound_is_silent() -> None:
    vitals = writers.Vitals.shared(multiprocessing.get_context("forkserver"), 2)
    slot = vitals.register()  # this process stands in for a writer
    vitals.chunks[slot] = 7
    assert vitals.silent(11.0) is None
    vitals.beats[slot] = time.monotonic() - 12.0
    silence = vitals.silent(11.0)
    assert silence is not None and (silence.pid, silence.chunk) == (os.getpid(), 7) and silence.seconds > 11.0
    settings = Settings(target_query_timeout_seconds=3, target_connect_timeout_seconds=3)
    error = str(writers._stalled(silence, settings))
    assert f"load: warehouse writer process {os.getpid()} stalled writing chunk 7: no sign of life for 12." in error
    bound = "(CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS 3 + CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS 3 + 5 s margin)"
    assert bound in error


def test_a_stopped_process_is_killed() -> None:
    """SIGTERM alone never reaches a stopped process; with SIGCONT (or SIGKILL after the grace) it ends."""
    stopped = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(stopped.pid, signal.SIGSTOP)
        writers._kill(stopped.pid)
        assert stopped.wait(timeout=5) in (-signal.SIGTERM, -signal.SIGKILL)
    finally:
        stopped.kill()
        stopped.wait()


def test_silence_counts_from_the_watchdogs_waking_and_skips_writers_already_killed() -> None:
    """A job stopped and resumed as a whole (Ctrl-Z, a frozen cgroup) stopped its writers with the
    watchdog: silence counts from the watchdog's waking, not from the last beat before the pause. A
    writer already killed (a zombie until reaped) is not found again, so a second stopped writer is."""
    vitals = writers.Vitals.shared(multiprocessing.get_context("forkserver"), 2)
    slot = vitals.register()
    vitals.beats[slot] = time.monotonic() - 400.0  # its last beat before a long pause of the whole job
    assert vitals.silent(11.0) is not None
    assert vitals.silent(11.0, since=time.monotonic() - 1.0) is None  # the watchdog woke a second ago
    assert vitals.silent(11.0, skip={os.getpid()}) is None
