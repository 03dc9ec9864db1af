"""Fault injection for crash tests: `CLAIMS_ETL_FAULT=<point>[:<chunk>]` makes the run kill itself
with SIGKILL (no cleanup, no exception handlers, exactly like a power cut) when it reaches that point.

Points, in run order: `after_lease`, `after_extract`, `after_validate`, `after_price`, and per load
chunk k (1-based): `during_write:k` (some tables inserted, not committed), `after_commit:k` (warehouse
committed, source not yet marked), `during_mark:k` (statuses updated, not committed), `after_mark:k`.
`pause_before_write:k` sleeps `CLAIMS_ETL_FAULT_PAUSE` seconds instead, so a test can break a
connection from outside. Unset (always, outside tests): every call is a no-op.
"""

from __future__ import annotations

import os
import signal
import time

from claims_etl.settings import Settings


def point(settings: Settings, name: str, chunk: int | None = None) -> None:
    """Kill (or pause) the process here if the settings name this point."""
    if settings.fault is None:
        return
    wanted, _, wanted_chunk = settings.fault.partition(":")
    here = name == wanted and (not wanted_chunk or chunk == int(wanted_chunk))
    if not here:
        return
    if name.startswith("pause"):
        time.sleep(settings.fault_pause)
        return
    os.kill(os.getpid(), signal.SIGKILL)
