"""Fault injection for crash tests: `CLAIMS_ETL_FAULT=<point>[:<chunk>]` makes the run kill itself
with SIGKILL (no cleanup, no exception handlers, exactly like a power cut) when it reaches that point.
Only runs given these hooks fire them: the development entry (`python -m claims_etl.dev.faulty`,
claims_etl/dev/faulty.py) installs `from_settings` for the runs and reprices it starts, and an
in-process test passes `faults=from_settings(settings)`; the plain command line ignores the settings.

Points, in run order: `after_lease`, `after_extract`, `after_validate`, `after_price`, and per load
chunk k (1-based): `during_write:k` (some tables inserted, not committed), `after_commit:k` (warehouse
committed, source not yet marked), `during_mark:k` (statuses updated, not committed), `after_mark:k`;
`after_release` once a range's every claim is marked and its lease released (a Dask worker dying there
leaves a finished range whose task is retried).
`reprice_after_commit:k`: a reprice's chunk k of changed claims committed in the warehouse.
`pause_before_write:k` sleeps `CLAIMS_ETL_FAULT_PAUSE` seconds instead, so a test can break a
connection from outside; `pause_during_write:k` does so inside chunk k's warehouse transaction, its
first table inserted (a signal sent then finds a write in flight); a pause ends early once the run is
asked to stop (claims_etl/engine/stopping.py); `pause_after_read` sleeps after each extract read of a
range (with the once file, after the first: the file appears when the pause starts), so a test can
commit a producer's change between reads; `pause_after_lease` sleeps once the run's ranges are leased
(a producer's late claims inside them); `pause_after_repair` sleeps in every chunk transaction that
deletes a dead run's rows, after the DELETEs (two such chunks at once then deadlock on MariaDB's gap
locks).
`stall_writer:k` SIGSTOPs the writer process that starts chunk k (with `CLAIMS_ETL_LOAD_CONNECTIONS`
2 or more): a stalled writer, which the run must kill and fail on.
With `CLAIMS_ETL_FAULT_ONCE_FILE`, only the first process to create that file fires (a Dask worker
dies once; the retried task on another worker does not).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace

from claims_etl.engine import stopping
from claims_etl.faults import Faults, no_faults
from claims_etl.settings import Settings


@dataclass(frozen=True)
class FaultHooks:
    """The settings' fault point, as hooks that pickle to writer processes and Dask workers."""

    fault: str  # <point>[:<chunk>]
    pause: float = 0.0
    once_file: str | None = None
    run_pid: int | None = None  # in a warehouse writer process: the run it writes for, killed first

    def __call__(self, point: str, chunk: int | None = None) -> None:
        """Kill (or pause) the process here if the fault names this point."""
        wanted, _, wanted_chunk = self.fault.partition(":")
        here = point == wanted and (not wanted_chunk or chunk == int(wanted_chunk))
        if not here:
            return
        if self.once_file and not _first_to_fire(self.once_file):
            return
        # ends early once the run is asked to stop (tests/integration/crash/test_interrupt.py)
        if point.startswith("pause"):
            stopping.sleep(self.pause)
            return
        if point.startswith("stall"):  # stopped, not dead: only the run's watchdog ends it
            os.kill(os.getpid(), signal.SIGSTOP)
            return
        if self.run_pid is not None:
            os.kill(self.run_pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    def in_writer(self, run_pid: int) -> Faults:
        """In a writer process (claims_etl/engine/writers.py): a fault point there kills the run, then it."""
        return replace(self, run_pid=run_pid)


def from_settings(settings: Settings) -> Faults:
    """The hooks `settings.fault` (CLAIMS_ETL_FAULT and its siblings) asks for; none when unset."""
    if settings.fault is None:
        return no_faults
    return FaultHooks(settings.fault, settings.fault_pause, settings.fault_once_file)


def _first_to_fire(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
