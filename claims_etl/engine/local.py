"""The local engine: a run's ranges worked in this process, range k+1 prepared in a thread while
range k loads, so memory is two ranges' frames whatever the run's size."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from itertools import count
from typing import Any

import psycopg

from claims_etl.engine import stopping
from claims_etl.engine.chunk_loading import bookkeeping
from claims_etl.engine.leases import ClaimRange
from claims_etl.engine.outcomes import RangeOutcome, Tally
from claims_etl.engine.range_work import RangeLoader, prepare
from claims_etl.engine.transform import Prepared
from claims_etl.engine.writers import InProcessWriter, open_writer
from claims_etl.faults import Faults
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.targets import Target


def work_locally(
    settings: Settings,
    work: list[ClaimRange],
    frames: ReferenceFrames,
    *,
    source: psycopg.Connection[Any],
    target: Target,
    tally: Tally,
    outcomes: list[RangeOutcome],
    faults: Faults,
) -> None:
    """Work `work` in order, range k+1 prepared in a thread while range k loads: connectorx and
    Polars release the GIL, so preparing overlaps the GIL-holding ODBC writes for one more range of
    memory (docs/performance.md has what it measured).

    Each range is worked once per run, and no other run can touch this run's leases while its
    session holds the run lock, so the local engine needs no range locks or attempt counts."""
    loaded_at = datetime.now(UTC)
    with ThreadPoolExecutor(1, "prepare") as preparer:

        def start_preparing(part: ClaimRange) -> tuple[RangeOutcome, Future[Prepared]]:
            outcome = RangeOutcome(number=part.number)
            # In a copy of this context: the run's log fields and trace span reach the prepare thread.
            context = contextvars.copy_context()
            return outcome, preparer.submit(context.run, prepare, settings, part, frames, outcome, tally, faults)

        upcoming = start_preparing(work[0]) if work else None
        # Writer processes only now: starting them waits for the fork server's imports, which the
        # first range's prepare should not.
        writing = (
            open_writer(settings, target, faults=faults)
            if work
            else nullcontext(InProcessWriter(settings, target, faults))
        )
        try:
            with writing as writer, bookkeeping() as bookkeeper:
                loader = RangeLoader(settings, loaded_at, source, writer, bookkeeper, count(1), tally, faults)
                for index, part in enumerate(work):
                    if stopping.requested() is not None:  # between ranges: the last one's marks and release done first
                        bookkeeper.settle()
                    stopping.check()
                    assert upcoming is not None
                    outcome, preparing = upcoming
                    outcomes.append(outcome)  # counted once it is this range's turn; a failure shows its stage
                    prepared = preparing.result()
                    upcoming = start_preparing(work[index + 1]) if index + 1 < len(work) else None
                    loader.load(part, prepared, outcome)
                    del prepared  # one range loading and one being prepared: memory is two ranges, not the run
        except BaseException:
            preparer.shutdown(wait=False, cancel_futures=True)  # fail now, not after the next range's prepare
            raise
