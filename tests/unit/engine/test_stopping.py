"""The orderly stop's pieces (claims_etl/engine/stopping.py) in this process, with real signals: the
first SIGINT or SIGTERM is only noted, a second stops at once, and the exit codes are 128 + the signal.
The whole run is tried in tests/integration/crash/test_interrupt.py."""

from __future__ import annotations

import os
import pickle
import signal
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


def test_the_error_crosses_processes_intact() -> None:
    again = pickle.loads(pickle.dumps(RunInterruptedError(signal.SIGINT, forced=True)))
    assert (type(again), again.signum, again.forced, again.exit_code) == (RunInterruptedError, signal.SIGINT, True, 130)
    assert str(again) == str(RunInterruptedError(signal.SIGINT, forced=True))
