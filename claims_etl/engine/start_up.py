"""A run's start-up, side by side: while the run's main thread imports Polars, Arrow and the warehouse
driver and opens the warehouse (its etl_runs row, killed runs marked), three threads work on sessions
of their own: the leases are taken, the preflight check (engine/preflight.py) runs, and the reference
frames (reference/cache.py) load. One after the other they were most of a run's fixed cost
(docs/performance.md, "Start-up").

The order a run guarantees is kept: the lease transaction commits only once the preflight passed (a
run refused by it leases nothing) and the run said go (`StartUp.leased`), after its warehouse row and
before its first stage; a run that fails or is stopped before that rolls it back and leases nothing
(`starting`). The lease's and the reference's stage records join the run's in that order.

The lease and the preflight thread need psycopg only, so they work while the main thread imports.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from claims_etl.db.source import source_connection
from claims_etl.engine import leases
from claims_etl.engine.preflight import preflight
from claims_etl.errors import StageError
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.settings import Settings

if TYPE_CHECKING:
    from claims_etl.reference import ReferenceFrames
    from claims_etl.reference.cache import CacheStats

T = TypeVar("T")
StageContext = Callable[[StageTimer, str], AbstractContextManager[StageRecord]]


# How long the lease transaction may hold the run-wide lease lock (leases/lease_lock.sql) waiting for the
# run's go: the imports and the warehouse's first statements take well under a second; a warehouse that
# answers slowly (connect retries) must not keep other runs from leasing. Past it the lease rolls back
# and is taken again once the run says go.
LEASE_HOLD_SECONDS = 5.0


class _HeldTooLongError(Exception):
    """The run's go did not come within LEASE_HOLD_SECONDS: the lease rolls back and waits without the lock."""


@dataclass
class _Gate:
    """What the lease transaction waits for before its commit: the preflight's verdict, and the run's go
    (or its end: then nothing is leased)."""

    checking: Future[dict[int, int]]
    go: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False

    def may_commit(self) -> None:
        """`leases.take`'s `before_commit`."""
        self.checking.result()  # a run the preflight refuses leases nothing
        if not self.go.wait(LEASE_HOLD_SECONDS):
            raise _HeldTooLongError
        self.wait_for_go()

    def wait_for_go(self) -> None:
        self.go.wait()
        if self.abandoned:
            raise StageError("lease", "the run ended before its first stage: nothing leased")


@dataclass(frozen=True)
class StartUp:
    """The leases (held uncommitted until `leased`), the preflight's verdict and the reference frames,
    coming in start-up threads."""

    gate: _Gate
    taking: Future[leases.Leased]
    lease_records: list[StageRecord]  # the lease stage's, once it started
    loading: Future[tuple[ReferenceFrames, CacheStats]]
    reference_records: list[StageRecord]  # the reference stage's, once it started

    def unpriceable(self) -> dict[int, int]:
        """The preflight's result: pending claims no release prices, by year (or its error)."""
        return self.gate.checking.result()

    def leased(self, into: list[StageRecord]) -> leases.Leased:
        """Let the lease transaction commit (once the preflight passed) and wait for it; the lease
        stage's record is added to `into` (failed or not)."""
        self.gate.go.set()
        try:
            return self.taking.result()
        finally:
            into.extend(self.lease_records)

    def reference(self, into: list[StageRecord]) -> tuple[ReferenceFrames, CacheStats]:
        """The reference frames; their stage record is added to `into` (failed or not)."""
        try:
            return self.loading.result()
        finally:
            into.extend(self.reference_records)

    def abandon(self) -> None:
        """The run failed or stopped before `leased`: the lease transaction rolls back."""
        if not self.gate.go.is_set():
            self.gate.abandoned = True
            self.gate.go.set()


@contextmanager
def starting(settings: Settings, run_id: str, stage: StageContext) -> Iterator[StartUp]:
    """The start-up threads at work for the run `run_id`, stages timed by `stage`. Leaving waits for
    them, after rolling the leases back unless `StartUp.leased` let them commit."""
    with ThreadPoolExecutor(3, "start-up") as helpers:
        started = _start(settings, run_id, helpers, stage)
        try:
            yield started
        finally:
            started.abandon()


def _start(settings: Settings, run_id: str, helpers: ThreadPoolExecutor, stage: StageContext) -> StartUp:
    lease_timer, reference_timer = StageTimer(), StageTimer()

    def check() -> dict[int, int]:
        with source_connection(settings) as session:
            return preflight(session, settings)

    gate = _Gate(_in_context(helpers, check))

    def take() -> leases.Leased:
        with stage(lease_timer, "lease") as record, source_connection(settings) as session:
            leased = _take(settings, run_id, session, gate)
            record.rows_out = leased.total
        return leased

    def load() -> tuple[ReferenceFrames, CacheStats]:
        from claims_etl.reference.cache import reference_frames  # noqa: PLC0415 (Polars: off the lease's path)

        with stage(reference_timer, "reference") as record:
            frames, cache = reference_frames(settings)
            record.rows_out = frames.rvu.height + frames.gpci.height
        return frames, cache

    taking = _in_context(helpers, take)
    return StartUp(gate, taking, lease_timer.records, _in_context(helpers, load), reference_timer.records)


def _take(settings: Settings, run_id: str, session: psycopg.Connection[Any], gate: _Gate) -> leases.Leased:
    """The leases, committed through `gate`; taken again once the go comes if it was slow to come."""
    sizes = {"claims_per_range": settings.range_claims, "first_range_claims": leases.first_range_claims(settings)}
    try:
        return leases.take(session, settings, run_id, **sizes, before_commit=gate.may_commit)
    except _HeldTooLongError:
        gate.wait_for_go()
    return leases.take(session, settings, run_id, **sizes, before_commit=gate.may_commit)


def _in_context(helpers: ThreadPoolExecutor, work: Callable[[], T]) -> Future[T]:
    """`work` in a thread, in a copy of this context: the run's log fields and trace span reach it."""
    return helpers.submit(contextvars.copy_context().run, work)
