"""The orderly stop's pieces (claims_etl/engine/stopping.py) in this process, with real signals: the
first SIGINT or SIGTERM is only noted, a second stops at once, and the exit codes are 128 + the signal.
The whole run is tried in tests/crash/test_interrupt.py."""

from __future__ import annotations

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
    with stopping.on_signals():
        stopping.check()  # nothing asked yet
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # the handler runs in the main thread, between bytecodes
        assert stopping.requested() == signum
        with pytest.raises(RunInterruptedError) as stopped:
            stopping.check()
    assert stopped.value.exit_code == code and not stopped.value.forced
    assert stopping.requested() is None  # left with the handlers restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


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


def test_the_error_crosses_processes_intact() -> None:
    again = pickle.loads(pickle.dumps(RunInterruptedError(signal.SIGINT, forced=True)))
    assert (type(again), again.signum, again.forced, again.exit_code) == (RunInterruptedError, signal.SIGINT, True, 130)
    assert str(again) == str(RunInterruptedError(signal.SIGINT, forced=True))
