"""The unit of work of a run: one claim_id range of its leased claims, taken end to end (extract ->
validate -> price -> load, where load writes the warehouse, then marks the source) on one source and
one target session.

Both engines run it: the local engine in this process (`work_locally`: range k+1 is prepared while
range k loads), so memory is bounded by two ranges rather than by the run; the Dask engine
(claims_etl/distributed.py) as one task per range on its workers (`process_range`). A `Range` and its
`RangeOutcome` are small and picklable.

Exactly once across attempts: a range is worked under its own advisory lock and every attempt is
counted in staging.run_ranges. A second attempt (its first worker died) waits for the first one's
session to be gone, then marks the range's remaining leases recovered, so its load deletes whatever
the first attempt committed before inserting again. Claims the first attempt marked are no longer
leased and are not read again.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import count
from typing import Any

import polars as pl
import psycopg

from claims_etl import faults, load, sql
from claims_etl.db import Target
from claims_etl.errors import StageError
from claims_etl.extract import extract, marked_rejected
from claims_etl.price import Priced, price_keyed
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.summary import rejections_by_rule
from claims_etl.timing import StageRecord, StageTimer
from claims_etl.validate import validate
from claims_etl.writers import InProcessWriter, Writer, open_writer

RANGE_STAGES = ("extract", "validate", "price", "load")
Tally = Callable[[str, int], None]  # (stage, rows just done): live progress


def _no_tally(_stage: str, _rows: int) -> None:
    return None


@dataclass(frozen=True)
class Range:
    run_id: str
    number: int  # 1-based, in claim_id order
    low: int  # inclusive claim_id bounds: every claim the run leased in them belongs to this range
    high: int
    claims: int  # leased when planned


@dataclass
class RangeOutcome:
    """What one range did, sent back to the driver (from a Dask worker too)."""

    number: int
    attempt: int = 1
    claims_read: int = 0
    claims_priced: int = 0
    claims_rejected: int = 0
    stages: list[StageRecord] = field(default_factory=list)
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    chunk_seconds: list[float] = field(default_factory=list)
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def plan(
    connection: psycopg.Connection[Any], run_id: str, claims_per_range: int, first_range_claims: int | None = None
) -> list[Range]:
    """Cut the run's leased claims into consecutive ranges of at most `claims_per_range` claims, the
    first of at most `first_range_claims` (default: `claims_per_range`)."""
    sizes = {"claims_per_range": claims_per_range, "first_range_claims": first_range_claims or claims_per_range}
    with connection.cursor() as cursor:
        cursor.execute(sql.load("source__plan_ranges"), {"run_id": run_id} | sizes)
        rows = cursor.fetchall()
    connection.commit()
    return [Range(run_id, number, low, high, claims) for number, (low, high, claims) in enumerate(rows, start=1)]


def first_range_claims(settings: Settings) -> int:
    """The local engine loads nothing until its first range is prepared, then prepares each next range
    while the one before loads. A first range a quarter the size starts the load sooner: 100k claims
    into MariaDB, as 25k + 75k against one range of 100k, were faster in 7 of 7 alternating pairs
    (median 0.15 s, ~5%). Dask tasks run side by side: there every range is full size."""
    return settings.range_claims if settings.engine == "dask" else max(1, settings.range_claims // 4)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 the first time the range is worked in this run
    priced_before: int = 0  # claims an earlier attempt already marked, by status
    rejected_before: int = 0


@contextmanager
def claimed(source: psycopg.Connection[Any], part: Range) -> Iterator[Attempt]:
    """Hold the range's lock while working it; yields which attempt at the range this is."""
    bounds = {"run_id": part.run_id, "low": part.low, "high": part.high}
    try:
        with source.cursor() as cursor:
            cursor.execute(sql.load("source__range_lock"), bounds)
            cursor.execute(sql.load("source__range_start"), bounds)
            number = int(cursor.fetchone()[0])  # type: ignore[index]
            attempt = Attempt(number)
            if number > 1:
                cursor.execute(sql.load("source__range_recover"), bounds)
                cursor.execute(sql.load("source__range_done"), bounds)
                priced, rejected = cursor.fetchone()  # type: ignore[misc]
                attempt = Attempt(number, priced, rejected)
        source.commit()
        yield attempt
    finally:
        with suppress(psycopg.Error):  # a broken session has released its locks already
            source.rollback()
            source.execute(sql.load("source__range_unlock"), bounds)
            source.commit()


@dataclass(frozen=True)
class Prepared:
    """A range extracted, validated and priced: what its load writes."""

    priced: Priced
    rejected: pl.DataFrame  # schemas.REJECTED


def prepare(
    settings: Settings, part: Range, frames: ReferenceFrames, outcome: RangeOutcome, tally: Tally = _no_tally
) -> Prepared:
    """Extract, validate and price one range; timings and counts go into `outcome`."""
    timer = StageTimer(records=outcome.stages)
    with timer.stage("extract", rows_in=part.claims) as stage:
        extracted = extract(settings, part.run_id, part.low, part.high)
        stage.rows_out = outcome.claims_read = extracted.claims.height
    tally("extract", stage.rows_out)
    faults.point(settings, "after_extract")
    with timer.stage("validate", rows_in=outcome.claims_read) as stage:
        validated = validate(extracted.claims, extracted.lines, frames, run_date=settings.effective_run_date())
        stage.rows_out = validated.accepted_claims.height
    del extracted  # price needs only the accepted frames: free the raw rows before its joins
    tally("validate", outcome.claims_read)
    faults.point(settings, "after_validate")
    outcome.claims_rejected = validated.rejected.height
    outcome.rejections_by_rule = dict(rejections_by_rule(validated.rejected).iter_rows())
    with timer.stage("price", rows_in=validated.accepted_claims.height) as stage:
        priced = price_keyed(validated.accepted_claims, validated.accepted_keyed_lines)
        stage.rows_out = outcome.claims_priced = priced.claims.height
    tally("price", outcome.claims_read)
    faults.point(settings, "after_price")
    return Prepared(priced=priced, rejected=validated.rejected)


def load_range(
    settings: Settings,
    part: Range,
    prepared: Prepared,
    loaded_at: datetime,
    outcome: RangeOutcome,
    *,
    source: psycopg.Connection[Any],
    writer: Writer,
    chunk_numbers: Iterator[int],
    tally: Tally = _no_tally,
) -> None:
    """Write the range's warehouse rows chunk by chunk, each chunk marked in the source once committed.
    `chunk_numbers` numbers chunks for fault injection (the local engine counts across the run)."""
    timer = StageTimer(records=outcome.stages)
    with timer.stage("load", rows_in=outcome.claims_read) as stage:
        loading = _Loading(settings, part.run_id, loaded_at, source, writer, chunk_numbers, tally, outcome)
        chunks = load.chunks(prepared.rejected, prepared.priced, settings.load_chunk_claims)
        stage.rows_out = loading.run(chunks)
    stage.peak_rss_bytes += writer.peak_rss_bytes()


def expect_leases(part: Range, read: int, done_before: int = 0) -> None:
    """Every claim planned in the range must still be leased to the run, or marked by an earlier
    attempt. Fewer means another run took the leases over (this run's lock was lost, e.g. its
    sessions were closed by the server): stop rather than report a run that skipped claims."""
    if read + done_before != part.claims:
        raise StageError(
            "extract", f"range {part.number} holds {read + done_before} of its {part.claims} leases: the run lost them"
        )


def process_range(
    settings: Settings,
    part: Range,
    frames: ReferenceFrames,
    loaded_at: datetime,
    *,
    source: psycopg.Connection[Any],
    target: Target,
) -> RangeOutcome:
    """One attempt at a range, end to end under its lock (a Dask task)."""
    outcome = RangeOutcome(number=part.number)
    with claimed(source, part) as attempt:
        outcome.attempt = attempt.number
        earlier_by_rule = earlier_rejections(settings, part, frames) if attempt.rejected_before else Counter()
        prepared = prepare(settings, part, frames, outcome)
        expect_leases(part, outcome.claims_read, done_before=attempt.priced_before + attempt.rejected_before)
        writer = InProcessWriter(settings, target)  # a Dask worker cannot start processes; workers are the parallelism
        load_range(settings, part, prepared, loaded_at, outcome, source=source, writer=writer, chunk_numbers=count(1))
    # An earlier attempt's marked claims count with this one's.
    outcome.claims_read += attempt.priced_before + attempt.rejected_before
    outcome.claims_priced += attempt.priced_before
    outcome.claims_rejected += attempt.rejected_before
    outcome.rejections_by_rule = dict(Counter(outcome.rejections_by_rule) + earlier_by_rule)
    return outcome


def earlier_rejections(settings: Settings, part: Range, frames: ReferenceFrames) -> Counter[str]:
    """Rejections by rule of the claims an earlier attempt at the range rejected and marked (read
    before this attempt marks any). Validating them again (same reference frames, the run's pinned
    date) gives the ids it wrote; reading them back from the warehouse is not an option, as turbodbc's
    fetch never returns on the MariaDB ODBC driver (its issue 158, seen here on a one-row SELECT)."""
    earlier = marked_rejected(settings, part.run_id, part.low, part.high)
    rejected = validate(earlier.claims, earlier.lines, frames, run_date=settings.effective_run_date()).rejected
    return Counter(dict(rejections_by_rule(rejected).iter_rows()))


def work_locally(
    settings: Settings,
    work: list[Range],
    frames: ReferenceFrames,
    *,
    source: psycopg.Connection[Any],
    target: Target,
    tally: Tally,
    outcomes: list[RangeOutcome],
) -> None:
    """The local engine: range k+1 is prepared in a thread while range k loads. connectorx and
    Polars release the GIL, so in isolation a 100k-claim extract+validate+price (0.85 s) hid almost
    entirely behind its 2.0 s write; in a whole 1M-claim run on 2 cores shared with both database
    servers it measured neutral (the CPU is already saturated there), which is why it costs only
    one more range of memory rather than a bigger design.

    Each range is worked once per run, and no other run can touch this run's leases while its
    session holds the run lock, so the local engine needs no range locks or attempt counts."""
    loaded_at, chunk_numbers = datetime.now(UTC), count(1)
    with ThreadPoolExecutor(1, "prepare") as preparer:

        def start_preparing(part: Range) -> tuple[RangeOutcome, Future[Prepared]]:
            outcome = RangeOutcome(number=part.number)
            return outcome, preparer.submit(prepare, settings, part, frames, outcome, tally)

        upcoming = start_preparing(work[0]) if work else None
        # Writer processes only now: starting them waits for the fork server's imports, which the
        # first range's prepare should not.
        writing = open_writer(settings, target) if work else nullcontext(InProcessWriter(settings, target))
        try:
            with writing as writer:
                for index, part in enumerate(work):
                    assert upcoming is not None
                    outcome, preparing = upcoming
                    outcomes.append(outcome)  # counted once it is this range's turn; a failure shows its stage
                    prepared = preparing.result()
                    expect_leases(part, outcome.claims_read)
                    upcoming = start_preparing(work[index + 1]) if index + 1 < len(work) else None
                    load_range(
                        settings, part, prepared, loaded_at, outcome,
                        source=source, writer=writer, chunk_numbers=chunk_numbers, tally=tally,
                    )  # fmt: skip
                    del prepared  # one range loading and one being prepared: memory is two ranges, not the run
        except BaseException:
            preparer.shutdown(wait=False, cancel_futures=True)  # fail now, not after the next range's prepare
            raise


@dataclass
class _Loading:
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
    _marked: int = field(default=0, init=False)

    def run(self, chunks: Iterable[load.Chunk]) -> int:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark") as self.marker:
            for chunk in chunks:
                number = next(self.chunk_numbers)
                faults.point(self.settings, "pause_before_write", chunk=number)
                started = time.perf_counter()
                tables = load.chunk_tables(chunk, self.run_id, self.loaded_at)
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
        return self._marked

    def _drain(self) -> None:
        """Mark every chunk in flight. A chunk that deletes a dead run's rows before inserting is
        written alone: its DELETEs take InnoDB gap locks, and a concurrent chunk's inserts into those
        gaps deadlocked (measured in test_faults' rerun)."""
        while self._writing:
            self._mark_oldest()

    def _mark_oldest(self) -> None:
        """Wait for the oldest chunk's commit, then mark it (after the previous mark is done)."""
        written = self._writing.popleft()
        written.writing.result()
        self.outcome.chunk_seconds.append(written.committed - written.started)
        checkpoint = partial(faults.point, self.settings, chunk=written.number)
        checkpoint("after_commit")
        self._collect_mark()
        self._marking = self.marker.submit(self._mark, written.chunk, checkpoint)

    def _mark(self, chunk: load.Chunk, checkpoint: load.Checkpoint) -> int:
        done = load.mark_chunk(self.source, chunk, self.run_id, self.loaded_at, checkpoint)
        self.tally("load", done)  # now, not when the next chunk's commit is back: live progress
        return done

    def _collect_mark(self) -> None:
        if self._marking is not None:
            self._marked += self._marking.result()
            self._marking = None


@dataclass
class _Written:
    """A chunk handed to the writer. Its latency runs from before its conversion to its commit, not
    to when the loop got round to it (with several writers, that is later)."""

    chunk: load.Chunk
    number: int
    started: float
    writing: Future[int]
    committed: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.writing.add_done_callback(self._stamp)  # at once if the write is done already (in-process)

    def _stamp(self, _: Future[int]) -> None:
        self.committed = time.perf_counter()


def merged_stages(outcomes: Iterable[RangeOutcome]) -> list[StageRecord]:
    """One record per range stage for the whole run: seconds and rows summed over ranges (for a Dask
    run, worker-seconds: they add up across workers), peak RSS the largest any range saw."""
    merged = {name: StageRecord(stage=name, outcome="not run") for name in RANGE_STAGES}
    for outcome in outcomes:
        for record in outcome.stages:
            total = merged[record.stage]
            if total.outcome == "not run":
                total.outcome = "ok"
            total.seconds += record.seconds
            total.rows_in += record.rows_in
            total.rows_out += record.rows_out
            total.peak_rss_bytes = max(total.peak_rss_bytes, record.peak_rss_bytes)
            if record.outcome != "ok":
                total.outcome = record.outcome
    return list(merged.values())


def merged_rejections(outcomes: Iterable[RangeOutcome]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for outcome in outcomes:
        total.update(outcome.rejections_by_rule)
    return dict(sorted(total.items()))
