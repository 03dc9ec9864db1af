"""Range planning: a run's leased claims cut into consecutive claim_id ranges, the unit of work both
engines run, and the lock under which one range is worked.

Exactly once across attempts: a range is worked under its own advisory lock and every attempt is
counted in staging.run_ranges. A second attempt (its first worker died) waits for the first one's
session to be gone, then marks the range's remaining leases recovered, so its load deletes whatever
the first attempt committed before inserting again. Claims the first attempt marked are no longer
leased and are not read again (docs/design.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg

from claims_etl.db import sql
from claims_etl.errors import SourceError
from claims_etl.settings import Settings


@dataclass(frozen=True)
class ClaimRange:
    run_id: str
    number: int  # 1-based, in claim_id order
    low: int  # inclusive claim_id bounds: every claim the run leased in them belongs to this range
    high: int
    claims: int  # leased when planned


def plan(
    connection: psycopg.Connection[Any], run_id: str, claims_per_range: int, first_range_claims: int | None = None
) -> list[ClaimRange]:
    """Cut the run's leased claims into consecutive ranges of at most `claims_per_range` claims, the
    first of at most `first_range_claims` (default: `claims_per_range`)."""
    sizes = {"claims_per_range": claims_per_range, "first_range_claims": first_range_claims or claims_per_range}
    with connection.cursor() as cursor:
        cursor.execute(sql.load("source/plan_ranges"), {"run_id": run_id} | sizes)
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


def _lock(cursor: psycopg.Cursor[Any], part: ClaimRange, bounds: dict[str, Any]) -> None:
    """Take the range's lock (source/range_lock.sql), waiting at most the session's lock_timeout for an
    earlier attempt's session to end (settings.source_lock_timeout_seconds): a retry never blocks for ever."""
    try:
        cursor.execute(sql.load("source/range_lock"), bounds)
    except psycopg.errors.LockNotAvailable:
        raise SourceError(
            "extract",
            f"range {part.number} is still locked by an earlier attempt's session after the lock timeout "
            "(CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS): that session has not ended; the next run recovers the range",
        ) from None


@contextmanager
def claimed(source: psycopg.Connection[Any], part: ClaimRange) -> Iterator[Attempt]:
    """Hold the range's lock while working it; yields which attempt at the range this is."""
    bounds = {"run_id": part.run_id, "low": part.low, "high": part.high}
    try:
        with source.cursor() as cursor:
            _lock(cursor, part, bounds)
            cursor.execute(sql.load("source/range_start"), bounds)
            number = int(cursor.fetchone()[0])  # type: ignore[index]
            attempt = Attempt(number)
            if number > 1:
                cursor.execute(sql.load("source/range_recover"), bounds)
                cursor.execute(sql.load("source/range_done"), bounds)
                priced, rejected, quarantined = cursor.fetchone()  # type: ignore[misc]
                attempt = Attempt(number, priced, rejected, quarantined)
        source.commit()
        yield attempt
    finally:
        with suppress(psycopg.Error):  # a broken session has released its locks already
            source.rollback()
            source.execute(sql.load("source/range_unlock"), bounds)
            source.commit()
