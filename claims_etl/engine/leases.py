"""Range planning: a run's range leases (claim_id intervals, leased by stages/extract.lease), the unit
of work both engines run, the lock under which one range is worked, and its release.

Exactly once across attempts: a range is worked under its own advisory lock and every attempt is
counted on its lease row. A second attempt (its first worker died) waits for the first one's session
to be gone, then marks the range recovered, so its load deletes whatever the first attempt committed
before inserting again. Claims the first attempt marked are no longer pending and are not read again
(docs/design.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg

from claims_etl.db import sql
from claims_etl.errors import SourceError, StageError
from claims_etl.settings import Settings


@dataclass(frozen=True)
class ClaimRange:
    run_id: str
    number: int  # 1-based, in claim_id order
    low: int  # inclusive claim_id bounds of the range's lease: its pending claims (of its batch) are its own
    high: int
    claims: int  # pending when leased or taken over


def plan(connection: psycopg.Connection[Any], run_id: str) -> list[ClaimRange]:
    """The run's range leases in claim_id order (leases/plan_ranges.sql)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.load("leases/plan_ranges"), {"run_id": run_id})
        rows = cursor.fetchall()
    connection.commit()
    return [ClaimRange(run_id, number, low, high, claims) for number, (low, high, claims) in enumerate(rows, start=1)]


def first_range_claims(settings: Settings) -> int:
    """The local engine loads nothing until its first range is prepared, then prepares each next range
    while the one before loads; a first range a quarter the size starts the load sooner (measured in
    docs/performance.md). Dask tasks run side by side: there every range is full size."""
    return settings.range_claims if settings.engine == "dask" else max(1, settings.range_claims // 4)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 the first time the range is worked in this run
    priced_before: int = 0  # claims an earlier attempt already marked, by status
    rejected_before: int = 0
    quarantined_before: int = 0
    finished: bool = False  # an earlier attempt marked every claim and released the range: nothing to do


def _lock(cursor: psycopg.Cursor[Any], part: ClaimRange, bounds: dict[str, Any]) -> None:
    """Take the range's lock (leases/range_lock.sql), waiting at most the session's lock_timeout for an
    earlier attempt's session to end (settings.source_lock_timeout_seconds): a retry never blocks for ever."""
    try:
        cursor.execute(sql.load("leases/range_lock"), bounds)
    except psycopg.errors.LockNotAvailable:
        raise SourceError(
            "extract",
            f"range {part.number} is still locked by an earlier attempt's session after the lock timeout "
            "(CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS): that session has not ended; the next run recovers the range",
        ) from None


def _earlier_attempt(cursor: psycopg.Cursor[Any], bounds: dict[str, Any], number: int) -> Attempt:
    """What earlier attempts at the range marked, by status (leases/range_done.sql)."""
    cursor.execute(sql.load("leases/range_done"), bounds)
    priced, rejected, quarantined = cursor.fetchone()  # type: ignore[misc]
    return Attempt(number, priced, rejected, quarantined, finished=number == 0)


def _lost_or_finished(cursor: psycopg.Cursor[Any], part: ClaimRange, bounds: dict[str, Any]) -> Attempt:
    """No lease of this run for the range: another run's lease over it means this run lost it (stop);
    none means an earlier attempt finished and released it (leases/range_holder.sql)."""
    cursor.execute(sql.load("leases/range_holder"), bounds)
    if cursor.fetchone() is not None:
        raise StageError("extract", f"range {part.number} is leased to another run: this run lost its lease")
    return _earlier_attempt(cursor, bounds, 0)


@contextmanager
def claimed(source: psycopg.Connection[Any], part: ClaimRange) -> Iterator[Attempt]:
    """Hold the range's lock while working it; yields which attempt at the range this is."""
    bounds = {"run_id": part.run_id, "low": part.low, "high": part.high}
    try:
        with source.cursor() as cursor:
            _lock(cursor, part, bounds)
            cursor.execute(sql.load("leases/range_start"), bounds)
            started = cursor.fetchone()
            if started is None:
                attempt = _lost_or_finished(cursor, part, bounds)
            elif int(started[0]) > 1:
                cursor.execute(sql.load("leases/range_recover"), bounds)
                attempt = _earlier_attempt(cursor, bounds, int(started[0]))
            else:
                attempt = Attempt(1)
        source.commit()
        yield attempt
    finally:
        with suppress(psycopg.Error):  # a broken session has released its locks already
            source.rollback()
            source.execute(sql.load("leases/range_unlock"), bounds)
            source.commit()


def release(source: psycopg.Connection[Any], part: ClaimRange) -> None:
    """The range done, every claim it read marked: free its interval (leases/range_release.sql). No
    row means another run took the lease over: the run fails rather than report the range done."""
    with source.cursor() as cursor:
        cursor.execute(sql.load("leases/range_release"), {"run_id": part.run_id, "low": part.low})
        released = cursor.rowcount
    if released != 1:
        source.rollback()
        raise StageError("load", f"range {part.number} lost its lease to another run before its release")
    source.commit()


def release_all(source: psycopg.Connection[Any], run_id: str) -> int:
    """A run stopped in order: free the leases it holds that no dead run's rows may be under
    (leases/lease_release_run.sql); returns the leases freed. Called only when every chunk the run
    wrote is committed and marked: releasing a range with a committed, unmarked chunk would let the
    next run load its claims a second time."""
    with source.cursor() as cursor:
        cursor.execute(sql.load("leases/lease_release_run"), {"run_id": run_id})
        released = cursor.rowcount
    source.commit()
    return released
