"""The orderly stop's pieces (claims_etl/engine/stopping.py) in this process, with real signals: the
first SIGINT or SIGTERM is only noted, a second stops at once, and the exit codes are 128 + the signal.
The whole run is tried in tests/integration/crash/test_interrupt.py."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from claims_etl.engine import stopping
from claims_etl.errors import RunInterruptedError


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_is_noted_and_the_run_stops_at_its_next_check(signum: int, code: int) -> None:
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in an xdist worker
    with stopping.on_signals():
        stopping.check()  # nothing asked yet
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # the handler runs in the main thread, between bytecodes
        assert stopping.requested() == signum
        with pytest.raises(RunInterruptedError) as stopped:
            stopping.check()
    assert stopped.value.exit_code == code and not stopped.value.forced
    assert stopping.requested() is None  # left with the handlers restored
    assert signal.getsignal(signal.SIGINT) is before


def _signalled_twice(signum: int) -> None:
    with stopping.on_signals():
        os.kill(os.getpid(), signum)
        time.sleep(0.01)
        os.kill(os.getpid(), signum)
        time.sleep(1)  # never reached to its end


def test_a_second_signal_stops_at_once() -> None:
    with pytest.raises(RunInterruptedError) as stopped:
        _signalled_twice(signal.SIGTERM)
    assert (stopped.value.forced, stopped.value.exit_code) == (True, 143)
    assert str(stopped.value).startswith("stopped at once by a second SIGTERM")


def test_a_test_pause_ends_when_a_stop_is_asked() -> None:
    with stopping.on_signals():
        started = time.monotonic()
        signal.setitimer(
            signal.ITIMER_REAL, 0.1
        )  # SIGALRM's default would end the process: asked through SIGINT instead
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        stopping.sleep(30)
        assert time.monotonic() - started < 5
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_a_process_started_while_sigint_is_ignored_ignores_it_from_its_first_instruction() -> None:
    """How the writers' fork server starts (claims_etl/engine/writers.py): a Ctrl-C to the whole group at
    once does not end it, even before its code runs; the run's handler is back afterwards."""
    shows = "import signal, sys; sys.stdin.read(); print(signal.getsignal(signal.SIGINT).name)"
    with stopping.on_signals():
        with stopping.sigint_ignored():
            child = subprocess.Popen(
                [sys.executable, "-c", shows], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        os.kill(child.pid, signal.SIGINT)  # while it starts
        assert child.communicate("", timeout=60)[0].strip() == "SIG_IGN" and child.returncode == 0
        assert stopping.requested() is None
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert stopping.requested() == signal.SIGINT  # noted by the run's own handler, back in place


# A run's process in small: the handler installed before Polars is imported (a run imports it after its
# first statement), Polars queries running in two threads when SIGINT comes.
_POLARS_QUERIES_AT_A_CTRL_C = """
import json, os, signal, sys, threading, time
from claims_etl.engine import stopping
with stopping.on_signals():
    import polars as pl
    if sys.argv[1] == "kept":
        stopping.keep_sigint()
    frame = pl.DataFrame({"a": range(500_000)})
    failed = []
    def queries():
        try:
            end = time.monotonic() + 2
            while time.monotonic() < end:
                frame.lazy().with_columns(b=pl.col("a") % 13).sort("b").group_by("b").agg(pl.len()).collect()
        except BaseException as error:
            failed.append(type(error).__name__)
    other = threading.Thread(target=queries)
    other.start()
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    queries()
    other.join()
    print(json.dumps([failed, stopping.requested()]))
"""


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "hooked"])
def test_a_ctrl_c_during_polars_queries_is_only_noted_once_the_handler_is_kept(kept: bool) -> None:
    """Polars' SIGINT hook ends its running queries with KeyboardInterrupt, which would stop a run at
    once; `keep_sigint` (the run calls it before its first query) leaves the stop to the run. Should
    the hooked case stop failing, a Polars release dropped its hook."""
    script = [sys.executable, "-c", _POLARS_QUERIES_AT_A_CTRL_C, "kept" if kept else "hooked"]
    # Hooked, the signal must land inside a query for Polars to raise: on a loaded machine it may come
    # between two, so the canary gets three tries (a dropped hook fails all three).
    for _ in range(1 if kept else 3):
        ran = subprocess.run(script, capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stderr
        failed, requested = json.loads(ran.stdout)
        assert requested == signal.SIGINT
        if kept or "KeyboardInterrupt" in failed:
            break
    assert (failed == []) if kept else ("KeyboardInterrupt" in failed), failed


def test_the_error_crosses_processes_intact() -> None:
    again = pickle.loads(pickle.dumps(RunInterruptedError(signal.SIGINT, forced=True)))
    assert (type(again), again.signum, again.forced, again.exit_code) == (RunInterruptedError, signal.SIGINT, True, 130)
    assert str(again) == str(RunInterruptedError(signal.SIGINT, forced=True))
