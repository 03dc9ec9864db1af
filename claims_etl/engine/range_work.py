"""One claim range end to end: extract -> validate -> price (`prepare`), then load (`load_range`),
on one source and one target session. `process_range` is one attempt at a range under its lock, as a
Dask task runs it; the local engine (`engine.local`) calls `prepare` and `load_range` itself so that
it can overlap them. A `ClaimRange` and its `RangeOutcome` are small and picklable.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any

import polars as pl
import psycopg

from claims_etl.dev import fault_hooks
from claims_etl.engine import leases, stopping
from claims_etl.engine.chunk_loading import ChunkLoading
from claims_etl.engine.leases import ClaimRange, claimed
from claims_etl.engine.marking import quarantine_unreadable
from claims_etl.engine.writers import InProcessWriter, Writer
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.extract import extract, leave_unpriceable, marked_rejected
from claims_etl.stages.price import Priced, price_keyed
from claims_etl.stages.summary import rejections_by_rule, totals_by_place_of_service
from claims_etl.stages.validate import validate
from claims_etl.targets import Target

Tally = Callable[[str, int], None]  # (stage, rows just done): live progress


def _no_tally(_stage: str, _rows: int) -> None:
    return None


@dataclass
class RangeOutcome:
    """What one range did, sent back to the driver (from a Dask worker too)."""

    number: int
    attempt: int = 1
    claims_read: int = 0
    claims_priced: int = 0
    claims_rejected: int = 0
    # Left out with a reason (docs/spec.md §7): unreadable in the source (extract), refused by the
    # warehouse, or already in it from another run (isolate.write_chunk).
    claims_quarantined: int = 0
    stages: list[StageRecord] = field(default_factory=list)
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)  # warn-severity hits on priced claims
    chunk_seconds: list[float] = field(default_factory=list)
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Each chunk's source marking: (wall clock at its start in epoch seconds, seconds): the report's timeline.
    marks: list[tuple[float, float]] = field(default_factory=list)
    # Claims loaded priced, by the claim's place of service: [claims, charge cents, allowed cents].
    by_place_of_service: dict[str, list[int]] = field(default_factory=dict)
    # Whether the range was loaded whole (every chunk marked, its lease released); until then the
    # claims marked priced and rejected so far are what it committed (RunResult.absorb counts those),
    # and, once its load stopped early, their rejections by rule.
    loaded: bool = False
    marked_priced: int = 0
    marked_rejected: int = 0
    marked_rejections: dict[str, int] = field(default_factory=dict)

    def count_loaded(self, priced_claims: pl.DataFrame, rejected: pl.DataFrame) -> None:
        """Add a marked chunk's priced claims (quarantined ones left out) to the per-POS totals, and
        count what it committed (`loaded`)."""
        for pos, totals in totals_by_place_of_service(priced_claims).items():
            before = self.by_place_of_service.get(pos, [0, 0, 0])
            self.by_place_of_service[pos] = [a + b for a, b in zip(before, totals, strict=True)]
        self.marked_priced += priced_claims.height
        self.marked_rejected += rejected.height


@dataclass(frozen=True)
class Prepared:
    """A range extracted, validated and priced: what its load writes."""

    priced: Priced
    rejected: pl.DataFrame  # schemas.REJECTED
    repairs: pl.DataFrame | None = None  # extract.REPAIRS: recovered claims' (claim_id, run_id) to delete first
    warnings: pl.DataFrame | None = None  # schemas.WARNINGS: warn rules the priced claims broke
    unreadable: pl.DataFrame | None = None  # extract.UNREADABLE: quarantined before the range loads


def prepare(
    settings: Settings, part: ClaimRange, frames: ReferenceFrames, outcome: RangeOutcome, tally: Tally = _no_tally
) -> Prepared:
    """Extract, validate and price one range; timings and counts go into `outcome`."""
    timer = StageTimer(records=outcome.stages)
    with timer.stage("extract", rows_in=part.claims) as stage:
        extracted = leave_unpriceable(extract(settings, part.run_id, part.low, part.high), frames.releases)
        stage.rows_out = extracted.claims.height
        outcome.claims_read = extracted.claims.height + extracted.unreadable.height  # every claim the range holds
        repairs, unreadable = extracted.repairs, extracted.unreadable
    tally("extract", stage.rows_out)
    fault_hooks.point(settings, "after_extract")
    stopping.check()  # between stages: a stop asked for during a long read ends the range here
    with timer.stage("validate", rows_in=outcome.claims_read) as stage:
        validated = validate(
            extracted.claims,
            extracted.lines,
            frames,
            run_date=settings.effective_run_date(),
            rules=settings.rules().config,
        )
        stage.rows_out = validated.accepted_claims.height
    del extracted  # price needs only the accepted frames: free the raw rows before its joins
    tally("validate", outcome.claims_read)
    fault_hooks.point(settings, "after_validate")
    stopping.check()
    outcome.claims_rejected = validated.rejected.height
    outcome.rejections_by_rule = dict(rejections_by_rule(validated.rejected).iter_rows())
    outcome.warnings_by_rule = dict(validated.warnings.get_column("rule_id").value_counts().iter_rows())
    with timer.stage("price", rows_in=validated.accepted_claims.height) as stage:
        priced = price_keyed(validated.accepted_claims, validated.accepted_keyed_lines, frames)
        stage.rows_out = outcome.claims_priced = priced.claims.height
    tally("price", outcome.claims_read)
    fault_hooks.point(settings, "after_price")
    return Prepared(
        priced=priced, rejected=validated.rejected, repairs=repairs, warnings=validated.warnings, unreadable=unreadable
    )


def load_range(
    settings: Settings,
    part: ClaimRange,
    prepared: Prepared,
    loaded_at: datetime,
    outcome: RangeOutcome,
    *,
    source: psycopg.Connection[Any],
    writer: Writer,
    chunk_numbers: Iterator[int],
    tally: Tally = _no_tally,
) -> None:
    """Write the range's warehouse rows chunk by chunk, each chunk marked in the source once committed,
    then release the range's lease. `chunk_numbers` numbers chunks for fault injection (the local
    engine counts across the run)."""
    timer = StageTimer(records=outcome.stages)
    with timer.stage("load", rows_in=outcome.claims_read) as stage:
        if prepared.unreadable is not None and prepared.unreadable.height:
            # They have no warehouse rows: quarantined in the source alone, before any chunk is marked.
            outcome.claims_quarantined += quarantine_unreadable(
                source, part.run_id, prepared.unreadable, low=part.low, high=part.high
            )
        loading = ChunkLoading(settings, part.run_id, loaded_at, source, writer, chunk_numbers, tally, outcome)
        chunks = load.chunks(
            prepared.rejected, prepared.priced, settings.load_chunk_claims, prepared.repairs, prepared.warnings
        )
        try:
            loading.run(chunks)
        except BaseException:  # stopped early (a stop request, an error): count what it committed
            outcome.marked_rejections = loading.rejections_by_rule()
            raise
        finally:
            stage.rows_out = loading.marked
        leases.release(source, part)
        outcome.loaded = True
    fault_hooks.point(settings, "after_release")
    stage.peak_rss_bytes += writer.peak_rss_bytes()


def process_range(
    settings: Settings,
    part: ClaimRange,
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
        done_before = attempt.priced_before + attempt.rejected_before + attempt.quarantined_before
        if not attempt.finished:
            prepared = prepare(settings, part, frames, outcome)
            writer = InProcessWriter(
                settings, target
            )  # a Dask worker cannot start processes: workers are the parallelism
            load_range(
                settings, part, prepared, loaded_at, outcome, source=source, writer=writer, chunk_numbers=count(1)
            )
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
    rejected = validate(
        earlier.claims, earlier.lines, frames, run_date=settings.effective_run_date(), rules=settings.rules().config
    ).rejected
    return Counter(dict(rejections_by_rule(rejected).iter_rows()))
