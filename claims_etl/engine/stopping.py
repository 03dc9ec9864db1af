"""An orderly stop on SIGINT (Ctrl-C) or SIGTERM, for `claims-etl run` (installed by the CLI around
the run, never on import).

The first signal only asks the run to stop: the handler notes it and returns, so whatever the run is
doing finishes (a chunk's write commits, its marking commits). The run stops at its next check
(`check`): before the next load chunk, between a range's stages, between ranges. At a check every
chunk written is committed and marked, so the run's leases can be released and the next run takes
the claims left pending at once, as new work. A second signal stops it at once (KeyboardInterrupt,
wherever it is): then what a chunk did is repaired as after a crash (the next run recovers the leases).

The handlers restart interrupted system calls (`siginterrupt(False)`): a driver waiting on its socket
goes on waiting instead of failing with EINTR, so a signal never breaks a write in flight.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from claims_etl.errors import RunInterruptedError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STEP_SECONDS = 0.05  # how often a test pause (`sleep`) looks for a stop request

_requested: int | None = None  # the signal that asked the run to stop; read by every thread


def _ask_to_stop(signum: int, _frame: FrameType | None) -> None:
    """Only a note (a signal handler runs between two bytecodes of the main thread: it must not take
    a lock the interrupted code may hold); a second signal stops at once."""
    global _requested  # noqa: PLW0603  (the one flag the handler and the run's threads share)
    if _requested is not None:
        raise KeyboardInterrupt
    _requested = signum


@contextmanager
def on_signals() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM ask for an orderly stop. Outside the main thread (a test
    runner's thread) nothing is installed and the defaults stay."""
    global _requested  # noqa: PLW0603
    _requested = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _ask_to_stop) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.siginterrupt(signum, False)
    try:
        yield
    except KeyboardInterrupt:  # the second signal: the run's one line says so, with its exit code
        raise RunInterruptedError(_requested or signal.SIGINT, forced=True) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested = None


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """While inside, SIGINT is ignored, so that a process started meanwhile ignores it from its first
    instruction (an exec keeps an ignored signal ignored); then the handler is back as it was. A Ctrl-C
    in that short while is lost: the next one stops the run in order. Outside the main thread nothing
    changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        if previous is _ask_to_stop:  # as `on_signals` installed it: interrupted system calls restart
            signal.siginterrupt(signal.SIGINT, False)


def keep_sigint() -> None:
    """Install the orderly stop's SIGINT handler again, over the hook Polars chains in front of it when
    imported (a run imports it after `on_signals`, after its first statement): that hook turns a
    Ctrl-C into a KeyboardInterrupt out of whichever Polars query is running, in any thread, which
    stopped the run at once as if a second signal had come. Only while `on_signals` is in force, from
    the main thread."""
    import polars  # noqa: F401, PLC0415  (imported here at the latest, so that its hook goes now)

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _ask_to_stop:
        signal.signal(signal.SIGINT, _ask_to_stop)  # its C handler replaces the hook at the OS level
        signal.siginterrupt(signal.SIGINT, False)


def requested() -> int | None:
    """The signal that asked the run to stop, or None."""
    return _requested


def check() -> None:
    """Raise RunInterruptedError if a stop was asked for: called only where nothing is half done."""
    if _requested is not None:
        raise RunInterruptedError(_requested)


def sleep(seconds: float) -> None:
    """A test pause (claims_etl/dev/fault_hooks.py) that ends early when a stop is asked for."""
    deadline = time.monotonic() + seconds
    while _requested is None and time.monotonic() < deadline:
        time.sleep(min(_STEP_SECONDS, max(0.0, deadline - time.monotonic())))
