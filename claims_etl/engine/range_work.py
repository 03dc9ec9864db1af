"""One claim range end to end: extract -> validate -> price (`prepare`), then load (`RangeLoader`),
on one source and one target session. `process_range` is one attempt at a range under its lock, as a
Dask task runs it; the local engine (`engine.local`) calls `prepare` and `RangeLoader.load` itself so that
it can overlap them. A `ClaimRange` and its `RangeOutcome` are small and picklable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import count
from typing import Any

import polars as pl
import psycopg

from claims_etl.engine import leases, stopping
from claims_etl.engine.chunk_loading import Bookkeeper, ChunkLoading, bookkeeping
from claims_etl.engine.leases import ClaimRange, claimed
from claims_etl.engine.marking import quarantine_unreadable
from claims_etl.engine.outcomes import RangeOutcome, Tally, no_tally
from claims_etl.engine.transform import Prepared, transform, validated
from claims_etl.engine.writers import InProcessWriter, Writer
from claims_etl.faults import Faults, no_faults
from claims_etl.ops.timing import StageTimer
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.extract import Extracted, extract, leave_unpriceable, marked_rejected
from claims_etl.stages.summary import rejections_by_rule
from claims_etl.stages.validate import Validated
from claims_etl.targets import Target


def prepare(
    settings: Settings,
    part: ClaimRange,
    frames: ReferenceFrames,
    outcome: RangeOutcome,
    tally: Tally = no_tally,
    faults: Faults = no_faults,
) -> Prepared:
    """Extract, validate and price one range; timings and counts go into `outcome`."""
    timer = StageTimer(records=outcome.stages)

    def validated_now(checked: Validated) -> None:
        tally("validate", outcome.claims_read)
        faults("after_validate")
        stopping.check()
        outcome.claims_rejected = checked.rejected.height
        outcome.rejections_by_rule = dict(rejections_by_rule(checked.rejected).iter_rows())
        outcome.warnings_by_rule = dict(checked.warnings.get_column("rule_id").value_counts().iter_rows())

    # The extracted rows handed over, not kept in a variable here: transform frees them before pricing.
    prepared = transform(
        settings,
        frames,
        _extract(settings, part, frames, outcome, timer, tally, faults),
        timer=timer,
        between=validated_now,
    )
    outcome.claims_priced = prepared.priced.claims.height
    tally("price", outcome.claims_read)
    faults("after_price")
    return prepared


def _extract(
    settings: Settings,
    part: ClaimRange,
    frames: ReferenceFrames,
    outcome: RangeOutcome,
    timer: StageTimer,
    tally: Tally,
    faults: Faults,
) -> Extracted:
    """The range's claims read as a timed stage (those no release in force prices left pending)."""
    with timer.stage("extract", rows_in=part.claims) as stage:
        extracted = leave_unpriceable(extract(settings, part.run_id, part.low, part.high, faults), frames.releases)
        stage.rows_out = extracted.claims.height
        outcome.claims_read = extracted.claims.height + extracted.unreadable.height  # every claim the range holds
    tally("extract", stage.rows_out)
    faults("after_extract")
    stopping.check()  # between stages: a stop asked for during a long read ends the range here
    return extracted


@dataclass(frozen=True)
class RangeLoader:
    """What the loads of a run's ranges share: the settings, the run's load time, the source session,
    the writer, the bookkeeper that queues the source writes, the chunk numbering (for the fault points
    of `faults`; the local engine counts across the run), and the progress tally."""

    settings: Settings
    loaded_at: datetime
    source: psycopg.Connection[Any]
    writer: Writer
    bookkeeper: Bookkeeper
    chunk_numbers: Iterator[int]
    tally: Tally = no_tally
    faults: Faults = no_faults

    def load(self, part: ClaimRange, prepared: Prepared, outcome: RangeOutcome) -> None:
        """Write the range's warehouse rows chunk by chunk, each chunk marked in the source once
        committed, then release the range's lease. The marks and the release are queued on the
        bookkeeper: the load stage ends once the last chunk is committed, its last mark and the release
        follow while the next range loads."""
        settings, source, bookkeeper = self.settings, self.source, self.bookkeeper
        timer = StageTimer(records=outcome.stages)
        with timer.stage("load", rows_in=outcome.claims_read) as stage:
            if prepared.unreadable.height:
                # They have no warehouse rows: quarantined in the source alone, before any chunk is marked.
                bookkeeper.queue(partial(_quarantine_unreadable, source, part, prepared.unreadable, outcome))
            loading = ChunkLoading(
                settings,
                part.run_id,
                self.loaded_at,
                source,
                self.writer,
                self.chunk_numbers,
                self.tally,
                outcome,
                bookkeeper,
                self.faults,
            )
            chunks = load.chunks(
                prepared.rejected, prepared.priced, settings.load_chunk_claims, prepared.repairs, prepared.warnings
            )
            try:
                stage.rows_out = loading.run(chunks)  # committed, and marked before anything queued after
            except BaseException:  # stopped early (a stop request, an error): count what it committed and marked
                bookkeeper.settle_quietly()
                stage.rows_out = loading.marked
                outcome.marked_rejections = loading.rejections_by_rule()
                raise
            bookkeeper.queue(partial(_release, source, part, outcome, self.faults))
        stage.peak_rss_bytes += self.writer.peak_rss_bytes()


def _quarantine_unreadable(
    source: psycopg.Connection[Any], part: ClaimRange, unreadable: pl.DataFrame, outcome: RangeOutcome
) -> None:
    outcome.claims_quarantined += quarantine_unreadable(source, part.run_id, unreadable, low=part.low, high=part.high)


def _release(source: psycopg.Connection[Any], part: ClaimRange, outcome: RangeOutcome, faults: Faults) -> None:
    """After the range's last mark: its lease released, its load whole."""
    leases.release(source, part)
    outcome.loaded = True
    faults("after_release")


def process_range(
    settings: Settings,
    part: ClaimRange,
    frames: ReferenceFrames,
    loaded_at: datetime,
    *,
    source: psycopg.Connection[Any],
    target: Target,
    faults: Faults = no_faults,
) -> RangeOutcome:
    """One attempt at a range, end to end under its lock (a Dask task)."""
    outcome = RangeOutcome(number=part.number)
    with claimed(source, part) as attempt:
        outcome.attempt = attempt.number
        earlier_by_rule = earlier_rejections(settings, part, frames) if attempt.rejected_before else Counter()
        done_before = attempt.priced_before + attempt.rejected_before + attempt.quarantined_before
        if not attempt.finished:
            prepared = prepare(settings, part, frames, outcome, faults=faults)
            # A Dask worker cannot start processes: workers are the parallelism.
            writer = InProcessWriter(settings, target, faults)
            with bookkeeping() as bookkeeper:  # the range's marks and release done before the task returns
                loader = RangeLoader(settings, loaded_at, source, writer, bookkeeper, count(1), faults=faults)
                loader.load(part, prepared, outcome)
    outcome.loaded = True  # this attempt's load, or an earlier one's, is whole
    # An earlier attempt's marked claims count with this one's.
    outcome.claims_read += done_before
    outcome.claims_quarantined += attempt.quarantined_before
    outcome.claims_priced += attempt.priced_before
    outcome.claims_rejected += attempt.rejected_before
    outcome.rejections_by_rule = dict(Counter(outcome.rejections_by_rule) + earlier_by_rule)
    return outcome


def earlier_rejections(settings: Settings, part: ClaimRange, frames: ReferenceFrames) -> Counter[str]:
    """Rejections by rule of the claims an earlier attempt at the range rejected and marked (read
    before this attempt marks any). Validating them again (same reference frames, the run's pinned
    date) gives the ids it wrote; reading them back from the warehouse is not an option, as turbodbc's
    fetch never returns on the MariaDB ODBC driver (turbodbc issue 158)."""
    earlier = marked_rejected(settings, part.run_id, part.low, part.high)
    rejected = validated(settings, earlier, frames).rejected
    return Counter(dict(rejections_by_rule(rejected).iter_rows()))
