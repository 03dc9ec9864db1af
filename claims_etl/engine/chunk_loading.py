"""Loading one range's chunks: each chunk written to the warehouse by the writer, then marked in the
source once its commit is back, while the next chunks are converted and written."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg

from claims_etl.dev import fault_hooks
from claims_etl.engine import marking, stopping
from claims_etl.engine.writers import Writer
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.isolate import ChunkWritten
from claims_etl.stages.summary import rejections_by_rule
from claims_etl.stages.write import FaultHook

if TYPE_CHECKING:
    from claims_etl.engine.range_work import RangeOutcome, Tally


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
    marker: ThreadPoolExecutor = field(init=False)  # marks chunks, one at a time, on the source session
    _writing: deque[_Written] = field(default_factory=deque, init=False)
    _marking: Future[int] | None = field(default=None, init=False)
    _rejected: list[pl.DataFrame] = field(default_factory=list, init=False)  # of the chunks marked
    marked: int = field(default=0, init=False)  # claims marked so far: the load's rows out, also when it stops early

    def run(self, chunks: Iterable[load.Chunk]) -> int:
        """Write and mark every chunk; returns the claims marked. Asked to stop (SIGINT, SIGTERM), it
        writes no further chunk: those in flight commit and are marked, then RunInterruptedError is raised."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark") as self.marker:
            for chunk in chunks:
                number = next(self.chunk_numbers)
                fault_hooks.point(self.settings, "pause_before_write", chunk=number)
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
            self._collect_mark()
        return self.marked

    def _stop_if_asked(self) -> None:
        """At a chunk boundary: on a stop request, every chunk handed to the writer committed and
        marked first, so that nothing this run wrote is left unmarked when its leases are released."""
        if stopping.requested() is not None:
            self._drain()
            self._collect_mark()
            stopping.check()

    def _drain(self) -> None:
        """Mark every chunk in flight. A chunk that deletes a dead run's rows before inserting is
        written alone: its DELETEs take InnoDB gap locks, and a concurrent chunk's inserts into those
        gaps deadlock (test_faults' rerun exercises it). Another worker's chunk can still meet it on
        Dask: the deadlock's victim is written again (write.write_tables)."""
        while self._writing:
            self._mark_oldest()

    def _mark_oldest(self) -> None:
        """Wait for the oldest chunk's commit, then mark it (after the previous mark is done)."""
        written = self._writing.popleft()
        committed = written.writing.result()
        self.outcome.chunk_seconds.append(written.committed - written.started)
        checkpoint = partial(fault_hooks.point, self.settings, chunk=written.number)
        checkpoint("after_commit")
        self._collect_mark()
        self._marking = self.marker.submit(self._mark, written.chunk, checkpoint, committed)

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
        self.outcome.count_loaded(priced, rejected)
        self._rejected.append(rejected)  # a slice of the range's frame: counted by rule only if the load stops early
        self.marked += done  # counted here, not when collected: a run stopped by an error counts it too
        self.tally("load", done)  # now, not when the next chunk's commit is back: live progress
        return done

    def rejections_by_rule(self) -> dict[str, int]:
        """Rejected claims by rule of the chunks marked so far (a load that stopped early)."""
        marked = [frame for frame in self._rejected if frame.height]
        return dict(rejections_by_rule(pl.concat(marked)).iter_rows()) if marked else {}

    def _collect_mark(self) -> None:
        if self._marking is not None:
            self._marking.result()
            self._marking = None


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
