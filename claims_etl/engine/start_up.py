"""A run's start-up, side by side: while the run's own session takes the leases, the preflight check
(engine/preflight.py) and the reference frames (reference/cache.py) each run on a session of their own
in a thread. The three are independent reads and one write; one after the other they were most of a
run's fixed cost (docs/performance.md, "On a quiet machine").

The order a run guarantees is kept: the lease transaction commits only once the preflight passed
(a run refused by it leases nothing), and the reference stage's record joins the run's after the
lease's."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from claims_etl.db.source import source_connection
from claims_etl.engine.preflight import preflight
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cache import CacheStats, reference_frames
from claims_etl.settings import Settings

T = TypeVar("T")
StageContext = Callable[[StageTimer, str], AbstractContextManager[StageRecord]]


@dataclass(frozen=True)
class StartUp:
    """The preflight's verdict and the reference frames, coming in threads of `helpers`."""

    checking: Future[dict[int, int]]
    records: list[StageRecord]  # the reference stage's, once it started
    loading: Future[tuple[ReferenceFrames, CacheStats]]

    def unpriceable(self) -> dict[int, int]:
        """The preflight's result: pending claims no release prices, by year (or its error)."""
        return self.checking.result()

    def reference(self, into: list[StageRecord]) -> tuple[ReferenceFrames, CacheStats]:
        """The reference frames; their stage record is added to `into` (failed or not)."""
        try:
            return self.loading.result()
        finally:
            into.extend(self.records)


def start(settings: Settings, helpers: ThreadPoolExecutor, stage: StageContext) -> StartUp:
    """Start the preflight and the reference stage (timed by `stage`) in `helpers`' threads."""
    timer = StageTimer()

    def check() -> dict[int, int]:
        with source_connection(settings) as session:
            return preflight(session, settings)

    def load() -> tuple[ReferenceFrames, CacheStats]:
        with stage(timer, "reference") as record:
            frames, cache = reference_frames(settings)
            record.rows_out = frames.rvu.height + frames.gpci.height
        return frames, cache

    return StartUp(_in_context(helpers, check), timer.records, _in_context(helpers, load))


def _in_context(helpers: ThreadPoolExecutor, work: Callable[[], T]) -> Future[T]:
    """`work` in a thread, in a copy of this context: the run's log fields and trace span reach it."""
    return helpers.submit(contextvars.copy_context().run, work)


def threads() -> AbstractContextManager[ThreadPoolExecutor]:
    """The start-up's two threads; leaving waits for them (a lease that failed waits for its preflight)."""
    return ThreadPoolExecutor(2, "start-up")
