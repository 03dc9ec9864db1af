"""Loading one range's chunks: each chunk written to the warehouse by the writer, then marked in the
source once its commit is back, while the next chunks are converted and written. The marks, and each
range's lease release after its last mark, go through the run's `Bookkeeper`: one thread, in order, so
the next range's chunks are written while the last range's last mark and release still run."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import polars as pl
import psycopg

from claims_etl.engine import marking, stopping
from claims_etl.engine.outcomes import RangeOutcome, Tally
from claims_etl.engine.writers import Writer
from claims_etl.errors import StageError
from claims_etl.faults import Faults, no_faults
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.isolate import ChunkWritten
from claims_etl.stages.summary import rejections_by_rule, totals_by_place_of_service
from claims_etl.stages.write import FaultHook


class Bookkeeper:
    """The source writes of a load (chunk marks, a range's release, its unreadable claims' quarantine),
    one at a time, in the order queued, on one thread of their own (psycopg waits on PostgreSQL without
    the GIL) and the run's source session. Once one fails, none queued after it runs (a range whose
    chunk was not marked keeps its lease, for the recovery of the next run); its error is raised by the
    next `settle`."""

    def __init__(self, thread: ThreadPoolExecutor) -> None:
        self._thread = thread
        self._queued: deque[Future[object]] = deque()
        self._failure: BaseException | None = None

    def queue(self, work: Callable[[], object]) -> None:
        self._queued.append(self._thread.submit(self._unless_failed, work))

    def settle(self) -> None:
        """Wait for everything queued; the first failure is raised."""
        while self._queued:
            self._queued.popleft().result()

    def settle_quietly(self) -> None:
        """Wait for everything queued, its failures left to the error already being raised."""
        while self._queued:
            self._queued.popleft().exception()

    def _unless_failed(self, work: Callable[[], object]) -> object:
        if self._failure is not None:
            raise StageError("load", "stopped: an earlier source write of this load failed") from self._failure
        try:
            return work()
        except BaseException as failure:
            self._failure = failure
            raise


@contextmanager
def bookkeeping() -> Iterator[Bookkeeper]:
    """A bookkeeper for one load: on the way out, everything queued has run (or was skipped after a failure)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark") as thread:
        bookkeeper = Bookkeeper(thread)
        try:
            yield bookkeeper
        except BaseException:
            bookkeeper.settle_quietly()
            raise
        bookkeeper.settle()


@dataclass
class ChunkLoading:
    """Chunks are written by the writer, up to one per warehouse connection at a time (one alone if
    it repairs a dead run's rows, see `_drain`), and each is marked in the source once its warehouse
    commit is back, in a thread (psycopg waits on PostgreSQL without the GIL), while the next chunks
    are converted and written."""

    settings: Settings
    run_id: str
    loaded_at: datetime
    source: psycopg.Connection[Any]
    writer: Writer
    chunk_numbers: Iterator[int]
    tally: Tally
    outcome: RangeOutcome
    bookkeeper: Bookkeeper  # marks the chunks, one at a time, on the source session
    faults: Faults = no_faults  # the run's fault points (claims_etl/faults.py)
    _writing: deque[_Written] = field(default_factory=deque, init=False)
    _rejected: list[pl.DataFrame] = field(default_factory=list, init=False)  # of the chunks marked
    marked: int = field(default=0, init=False)  # claims marked so far: the load's rows out, also when it stops early
    committed: int = field(default=0, init=False)  # claims of the chunks committed in the warehouse

    def run(self, chunks: Iterable[load.Chunk]) -> int:
        """Write every chunk and queue its mark; returns the claims committed, whose marks may still be
        running (the bookkeeper's). Asked to stop (SIGINT, SIGTERM), it writes no further chunk: those in
        flight commit and are marked, then RunInterruptedError is raised."""
        for chunk in chunks:
            number = next(self.chunk_numbers)
            self.faults("pause_before_write", number)
            self._stop_if_asked()
            started = time.perf_counter()
            tables = load.chunk_tables(chunk, self.run_id, self.loaded_at, fenced=True)
            recovering = tables.recovered.num_rows > 0
            if recovering:
                converting = time.perf_counter() - started
                self._drain()
                started = time.perf_counter() - converting  # its latency leaves out the wait for the others
            self._writing.append(_Written(chunk, number, started, self.writer.submit(tables, number)))
            if recovering or len(self._writing) >= self.writer.connections:
                self._mark_oldest()
        self._drain()
        return self.committed

    def _stop_if_asked(self) -> None:
        """At a chunk boundary: on a stop request, every chunk handed to the writer committed and
        marked first, so that nothing this run wrote is left unmarked when its leases are released."""
        if stopping.requested() is not None:
            self._drain()
            self.bookkeeper.settle()
            stopping.check()

    def _drain(self) -> None:
        """Mark every chunk in flight. A chunk that deletes a dead run's rows before inserting is
        written alone: its DELETEs take InnoDB gap locks, and a concurrent chunk's inserts into those
        gaps deadlock (test_faults' rerun exercises it). Another worker's chunk can still meet it on
        Dask: the deadlock's victim is written again (write.write_tables)."""
        while self._writing:
            self._mark_oldest()

    def _mark_oldest(self) -> None:
        """Wait for the oldest chunk's commit, then queue its mark once the source writes queued before
        are done (at most one mark waits: chunks are held in memory until marked)."""
        written = self._writing.popleft()
        committed = written.writing.result()
        self.committed += written.chunk.claim_count
        self.outcome.chunk_seconds.append(written.committed - written.started)
        checkpoint = partial(self.faults, chunk=written.number)
        checkpoint("after_commit")
        self.bookkeeper.settle()
        self.bookkeeper.queue(partial(self._mark, written.chunk, checkpoint, committed))

    def _mark(self, chunk: load.Chunk, checkpoint: FaultHook, committed: ChunkWritten) -> int:
        started_at, started = time.time(), time.perf_counter()
        quarantined = committed.quarantined  # left out of the commit: to status quarantined, with reasons
        done = marking.mark_chunk(
            self.source, chunk, self.run_id, self.loaded_at, checkpoint, quarantined, committed.reasons
        )
        self.outcome.marks.append((started_at, time.perf_counter() - started))
        priced, rejected = chunk.priced.claims, chunk.rejected
        if quarantined:  # counted as quarantined, not as the priced or rejected claims they were prepared as
            left_out = pl.Series(quarantined, dtype=pl.Int64).implode()
            rejected = rejected.filter(~pl.col("claim_id").is_in(left_out))
            self.outcome.claims_rejected -= chunk.rejected.height - rejected.height
            self.outcome.claims_priced -= len(quarantined) - (chunk.rejected.height - rejected.height)
            self.outcome.claims_quarantined += len(quarantined)
            priced = priced.filter(~pl.col("claim_id").is_in(left_out))
        self.outcome.count_loaded(totals_by_place_of_service(priced), priced.height, rejected.height)
        self._rejected.append(rejected)  # a slice of the range's frame: counted by rule only if the load stops early
        self.marked += done  # counted here, not when collected: a run stopped by an error counts it too
        self.tally("load", done)  # now, not when the next chunk's commit is back: live progress
        return done

    def rejections_by_rule(self) -> dict[str, int]:
        """Rejected claims by rule of the chunks marked so far (a load that stopped early)."""
        marked = [frame for frame in self._rejected if frame.height]
        return dict(rejections_by_rule(pl.concat(marked)).iter_rows()) if marked else {}


@dataclass
class _Written:
    """A chunk handed to the writer. Its latency runs from before its conversion to its commit, not
    to when the loop got round to it (with several writers, that is later)."""

    chunk: load.Chunk
    number: int
    started: float
    writing: Future[ChunkWritten]
    committed: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.writing.add_done_callback(self._stamp)  # at once if the write is done already (in-process)

    def _stamp(self, _: Future[ChunkWritten]) -> None:
        self.committed = time.perf_counter()
