"""Marking the source: a chunk's claims flipped from pending to rejected, processed or quarantined
once its warehouse rows are committed (`mark_chunk`), and a range's unreadable claims quarantined
before it loads (`quarantine_unreadable`). Each is one source transaction whose first statement is
the range lease's check (engine/leases.check): a run never marks claims it no longer holds.

Exactly once per chunk: the warehouse commit first, then the source mark (docs/design.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.engine import leases
from claims_etl.errors import StageError
from claims_etl.stages.isolate import QUARANTINE_REASON
from claims_etl.stages.load import Chunk
from claims_etl.stages.write import FaultHook, no_checkpoint


def _row_counts(cursor: psycopg.Cursor[Any], statements: list[str], parameters: dict[str, Any]) -> list[int]:
    """Each statement executed in turn: the rows each one changed."""
    done = []
    for statement in statements:
        cursor.execute(statement, parameters)
        done.append(cursor.rowcount)
    return done


def mark_chunk(
    source: psycopg.Connection[Any],
    chunk: Chunk,
    run_id: str,
    at: datetime,
    checkpoint: FaultHook = no_checkpoint,
    quarantined: tuple[int, ...] = (),
    reasons: tuple[str, ...] = (),
) -> int:
    """Flip the chunk's claims to rejected/processed (`quarantined` ones to quarantined, with their
    `reasons`, QUARANTINE_REASON where none is given), under the range lease's check, in one commit."""
    left_out = pl.Series("claim_id", quarantined, dtype=pl.Int64).implode()
    rejected, priced = chunk.rejected.get_column("claim_id"), chunk.priced.claims.get_column("claim_id")
    rejected_ids = rejected.filter(~rejected.is_in(left_out)).to_list()
    priced_ids = priced.filter(~priced.is_in(left_out)).to_list()
    parameters = {
        "rejected_ids": rejected_ids,
        "priced_ids": priced_ids,
        "run_id": run_id,
        "processed_at": at.astimezone(UTC),
        "low": chunk.low,
        "high": chunk.high,
        "quarantined_ids": list(quarantined),
        "reasons": list(reasons) or [QUARANTINE_REASON] * len(quarantined),
    }
    # rejected, processed (and quarantined, reasons recorded), once the lease is found held
    expected = [len(rejected_ids), len(priced_ids)] + [len(quarantined)] * 2 * bool(quarantined)
    marking = sql.statements("source/mark_claims") + (sql.statements("source/mark_quarantined") if quarantined else [])
    with source.cursor() as cursor:
        held = leases.check(cursor, run_id, chunk.low, chunk.high)
        done = _row_counts(cursor, marking, parameters) if held else []
        checkpoint("during_mark")
    if not held:  # another run took over our lease: never mark what we do not hold
        source.rollback()
        raise StageError("load", f"lost the lease on claims [{chunk.low}, {chunk.high}] to another run")
    if done != expected:
        source.rollback()
        raise StageError("load", f"claims [{chunk.low}, {chunk.high}] changed status under the run: marked {done}")
    source.commit()
    checkpoint("after_mark")
    return chunk.claim_count


def quarantine_unreadable(
    source: psycopg.Connection[Any], run_id: str, unreadable: pl.DataFrame, *, low: int, high: int
) -> int:
    """Quarantine a range's unreadable claims (`Extracted.unreadable`) in one source transaction: status
    `quarantined`, their reasons in staging.claim_quarantine, under the lease check. They have no
    warehouse rows (never read), so this needs no warehouse commit first. Returns how many."""
    ids = unreadable.get_column("claim_id").to_list()
    if not ids:
        return 0
    parameters = {
        "run_id": run_id,
        "processed_at": datetime.now(UTC),
        "low": low,
        "high": high,
        "quarantined_ids": ids,
        "reasons": unreadable.get_column("reason").to_list(),
    }
    with source.cursor() as cursor:
        held = leases.check(cursor, run_id, low, high)
        done = _row_counts(cursor, sql.statements("source/mark_quarantined"), parameters) if held else []
    if done != [len(ids), len(ids)]:  # another run took over our lease: never mark what we do not hold
        source.rollback()
        raise StageError("extract", f"lost the lease on unreadable claims in [{low}, {high}]")
    source.commit()
    return len(ids)
