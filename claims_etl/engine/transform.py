"""Validate then price, as a run does: its reference frames, its rules and its pinned date. One path for
a run's ranges (engine/range_work.py), a dry run (engine/dry_run.py) and a reprice
(engine/reprice.py), timed by the caller's StageTimer where the caller keeps stage records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl

from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.stages.extract import Extracted
from claims_etl.stages.price import Priced, price_keyed
from claims_etl.stages.validate import Validated, validate


@dataclass(frozen=True)
class Prepared:
    """Claims validated and priced: what a load writes (a range's, or a reprice's changed claims)."""

    priced: Priced
    rejected: pl.DataFrame  # schemas.REJECTED
    repairs: pl.DataFrame  # extract.REPAIRS: recovered claims' (claim_id, run_id) to delete first
    warnings: pl.DataFrame  # schemas.WARNINGS: warn rules the priced claims broke
    unreadable: pl.DataFrame  # extract.UNREADABLE: quarantined before a range loads


def validated(settings: Settings, pending: Extracted, frames: ReferenceFrames) -> Validated:
    """`validate` with the run's rules and its one "today" (V09), the same on every range and worker."""
    return validate(
        pending.claims, pending.lines, frames, run_date=settings.effective_run_date(), rules=settings.rules().config
    )


def _no_pause(_validated: Validated) -> None:
    return None


def transform(
    settings: Settings,
    frames: ReferenceFrames,
    pending: Extracted,
    *,
    timer: StageTimer | None = None,
    between: Callable[[Validated], None] = _no_pause,
) -> Prepared:
    """Validate `pending`, call `between` with what validate made of it, then price the accepted claims.
    With a `timer`, each is a timed stage (rows in: every claim the pending rows hold, unreadable ones
    too). Price needs only the accepted frames: given the caller's last reference to `pending` (an
    argument not kept in a variable), the raw rows are freed before its joins (a range's peak memory)."""
    repairs, unreadable = pending.repairs, pending.unreadable
    with _stage(timer, "validate", pending.claims.height + pending.unreadable.height) as stage:
        checked = validated(settings, pending, frames)
        stage.rows_out = checked.accepted_claims.height
    del pending
    between(checked)
    with _stage(timer, "price", checked.accepted_claims.height) as stage:
        priced = price_keyed(checked.accepted_claims, checked.accepted_keyed_lines, frames)
        stage.rows_out = priced.claims.height
    return Prepared(
        priced=priced, rejected=checked.rejected, repairs=repairs, warnings=checked.warnings, unreadable=unreadable
    )


@contextmanager
def _stage(timer: StageTimer | None, name: str, rows_in: int) -> Iterator[StageRecord]:
    """The timer's stage, or an untimed record for a caller that keeps none."""
    if timer is None:
        yield StageRecord(stage=name, rows_in=rows_in)
        return
    with timer.stage(name, rows_in=rows_in) as record:
        yield record
