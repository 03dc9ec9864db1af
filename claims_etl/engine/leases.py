"""Range leases: a run's claims as claim_id intervals of staging.range_leases, from their taking to
their release (docs/design.md, Range leases; the statements are queries/leases/*.sql).

- `take`: dead runs' leases taken over (`recoverable`, `takeovers`), then pending claims leased as
  ranges; `fence` then sets those dead runs `failed` in the warehouse before this run writes anything.
- `plan`: the run's ranges, the unit of work both engines run; `claimed`: the lock under which one
  range is worked, and which attempt at it this is.
- `check`: the lease still held, first in every marking transaction (claims_etl/engine/marking.py).
- `release`: a range done; `release_all` and `release_stopped`: a run stopped in order.

Exactly once across attempts: a range is worked under its own advisory lock and every attempt is
counted on its lease row. A second attempt (its first worker died) waits for the first one's session
to be gone, then marks the range recovered, so its load deletes whatever the first attempt committed
before inserting again. Claims the first attempt marked are no longer pending and are not read again
(docs/design.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from claims_etl.db import sql
from claims_etl.errors import SourceError, StageError
from claims_etl.settings import Settings

if TYPE_CHECKING:  # the warehouse drivers load after the run lock (cold start)
    from claims_etl.targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leased:
    recovered: int  # claims taken over from runs that died
    new: int  # pending claims newly leased
    taken_from: tuple[str, ...] = ()  # the dead runs whose leases these were: fenced before any write

    @property
    def total(self) -> int:
        return self.recovered + self.new


@dataclass(frozen=True)
class Takeover:
    """A dead run's range lease a run takes over (`takeovers`): its first `take` pending claims, the
    whole range when `take` is all it holds, else the range cut after them (leases/lease_split.sql)."""

    dead_run: str
    low: int
    high: int
    batch_id: str | None
    pending: int  # the range's pending claims (of its batch) now
    take: int

    @property
    def whole(self) -> bool:
        return self.take >= self.pending


def takeovers(dead: list[tuple[str, int, int, str | None, int]], limit: int | None) -> list[Takeover]:
    """Which of the dead runs' range leases (leases/lease_dead.sql rows: run, low, high, batch, pending
    claims, in claim_id order) a run with `limit` takes over: recovered claims count first against the
    limit. In claim_id order, each range whole while its pending claims fit in what is left of the
    limit; the first that does not fit is cut after the claims that do, and the ranges after it stay
    with their dead runs for a later run. No limit: every range whole.

    >>> rows = [("a", 1, 10, None, 4), ("b", 11, 20, None, 5), ("a", 21, 30, None, 3)]
    >>> [(t.low, t.take, t.whole) for t in takeovers(rows, 6)]
    [(1, 4, True), (11, 2, False)]
    >>> [(t.low, t.take) for t in takeovers(rows, None)], takeovers(rows, 4)[-1].whole
    ([(1, 4), (11, 5), (21, 3)], True)
    """
    chosen, left = [], limit
    for dead_run, low, high, batch_id, pending in dead:
        take = pending if left is None else min(pending, left)
        if take == 0 and pending > 0:
            break
        chosen.append(Takeover(str(dead_run), int(low), int(high), batch_id, int(pending), int(take)))
        left = None if left is None else left - take
    return chosen


def recoverable(connection: psycopg.Connection[Any], limit: int | None, run_id: str = "") -> list[Takeover]:
    """The dead runs' range leases a run with `limit` would take over now (`takeovers`), their runs'
    locks held until `connection`'s transaction ends (leases/lease_dead.sql)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.load("leases/lease_dead"), {"run_id": run_id})
        return takeovers(cursor.fetchall(), limit)


def _take_over(cursor: psycopg.Cursor[Any], run_id: str, chosen: list[Takeover]) -> dict[str, int]:
    """Cut each range taken in part (leases/lease_cut.sql, lease_split.sql), then take the chosen
    ranges over (leases/lease_recover.sql): each dead run and its pending claims taken."""
    for part in (t for t in chosen if not t.whole):
        bounds = {"low": part.low, "high": part.high, "batch_id": part.batch_id, "take": part.take}
        cursor.execute(sql.load("leases/lease_cut"), bounds)
        cut = int(cursor.fetchone()[0])  # type: ignore[index]
        for statement in sql.statements("leases/lease_split"):
            cursor.execute(statement, bounds | {"cut": cut, "dead_run": part.dead_run})
    if not chosen:
        return {}
    lows = [t.low for t in chosen]
    cursor.execute(
        sql.load("leases/lease_recover"), {"run_id": run_id, "dead_runs": [t.dead_run for t in chosen], "lows": lows}
    )
    return {str(dead): int(claims) for dead, claims in cursor.fetchall()}


def take(
    connection: psycopg.Connection[Any],
    settings: Settings,
    run_id: str,
    *,
    claims_per_range: int,
    first_range_claims: int | None = None,
    before_commit: Callable[[], object] = lambda: None,
) -> Leased:
    """Take over dead runs' range leases, then lease pending claims (batch applied) as claim_id
    intervals of at most `claims_per_range` claims, the first of at most `first_range_claims`
    (default: `claims_per_range`), in one commit (docs/design.md, Range leases). `settings.limit`
    counts the recovered claims first (`takeovers`), then the new ones: at most that many in all.
    `before_commit` may refuse the leases by raising: then nothing is leased (the run's preflight)."""
    sizes = {"claims_per_range": claims_per_range, "first_range_claims": first_range_claims or claims_per_range}
    with connection.cursor() as cursor:
        cursor.execute(sql.load("leases/lease_lock"))
        chosen = recoverable(connection, settings.limit, run_id)
        taken = _take_over(cursor, run_id, chosen)
        recovered = sum(taken.values())
        cursor.execute(
            sql.load("leases/lease_pending"),
            {
                "run_id": run_id,
                "batch_id": settings.batch_id,
                "limit": None if settings.limit is None else max(0, settings.limit - recovered),
                "skip_unpriceable": settings.skip_unpriceable,
            }
            | sizes,
        )
        new = int(cursor.fetchone()[0])  # type: ignore[index]
    try:
        before_commit()
    except BaseException:
        connection.rollback()
        raise
    connection.commit()
    return Leased(recovered=recovered, new=new, taken_from=tuple(sorted(taken)))


def fence(target: Target, run_ids: Sequence[str], at: datetime) -> None:
    """The runs whose leases this run took over (`Leased.taken_from`), `failed` in etl_runs before this
    run writes anything (leases/run_fence.sql): the fencing token their chunks check before committing
    (stages/write.write_tables). Not best effort: a run that cannot fence them must not repair their
    rows, so an error fails this run."""
    if run_ids:
        naive = at.replace(tzinfo=None)
        target.execute_many(target.statement("leases/run_fence"), [[naive, run_id] for run_id in run_ids])
        target.connection.commit()


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


def check(cursor: psycopg.Cursor[Any], run_id: str, low: int, high: int) -> bool:
    """Whether the run still holds the range lease around [low, high] (leases/lease_check.sql), the
    first statement of every marking transaction: its FOR SHARE lock makes a takeover wait for that
    transaction's end, and a takeover committed first leaves the run without it (never mark then)."""
    cursor.execute(sql.load("leases/lease_check"), {"run_id": run_id, "low": low, "high": high})
    return cursor.rowcount == 1


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


def release_stopped(source: psycopg.Connection[Any], run_id: str) -> None:
    """`release_all`, best effort, for a run stopped in order: leases not freed here are taken over by
    the next run as a dead run's, and the run's interruption stays what the operator sees."""
    try:
        freed = release_all(source, run_id)
    except psycopg.Error as error:
        log.warning("the interrupted run's leases were not released: %s", type(error).__name__)
        return
    log.info("stopped in order: %d leases released for the next run", freed)
