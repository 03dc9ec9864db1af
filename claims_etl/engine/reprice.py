"""`claims-etl reprice --release 2026B`: price again the processed claims with a line in a revised
release's window, and replace those whose amounts change (docs/spec.md §7).

Exactly once without leases: each chunk of changed claims is one warehouse transaction that keeps the
previous lines in `priced_claim_line_history` (with this run's id), deletes the claim's old rows and
inserts the new ones. A claim is changed only while the warehouse holds amounts other than the new
ones, so a reprice killed at any point and run again finds the claims it already replaced unchanged
and skips them: no claim is replaced twice, no history row is written twice. Claims stay `processed`
in the source. One reprice runs at a time (a session advisory lock).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.db.source import source_connection
from claims_etl.dev import fault_hooks
from claims_etl.engine.pipeline import new_run_id
from claims_etl.errors import ConfigurationError
from claims_etl.ops import logs, run_records
from claims_etl.ops.timing import StageRecord
from claims_etl.reference.cache import reference_frames
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.extract import Extracted, repriced
from claims_etl.stages.price import Priced, price_keyed
from claims_etl.stages.validate import validate
from claims_etl.stages.write import write_tables
from claims_etl.targets import Target, connect_target, read_target_frame

log = logging.getLogger(__name__)
# What a reprice compares: a claim changes when any of its lines' amounts does.
AMOUNTS = ("fee_schedule_cents", "adjustment_factor_e5", "allowed_cents")


@dataclass
class RepriceResult:
    run_id: str
    release: str
    dry_run: bool
    claims_read: int = 0  # processed claims with a line in the release's window
    claims_changed: int = 0
    claims_not_priceable: int = 0  # the release now rejects them: left as they were, counted
    allowed_before_cents: int = 0  # of the changed claims
    allowed_after_cents: int = 0
    seconds: float = 0.0
    stages: list[StageRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "release": self.release,
            "dry_run": self.dry_run,
            "claims_read": self.claims_read,
            "claims_changed": self.claims_changed,
            "claims_not_priceable": self.claims_not_priceable,
            "allowed_before": f"{self.allowed_before_cents / 100:.2f}",
            "allowed_after": f"{self.allowed_after_cents / 100:.2f}",
            "allowed_change": f"{(self.allowed_after_cents - self.allowed_before_cents) / 100:.2f}",
            "seconds": round(self.seconds, 4),
        }


def _window(source: psycopg.Connection[Any], release: str) -> tuple[date, date]:
    row = source.execute(sql.load("reference/release_window"), {"release": release}).fetchone()
    if row is None:
        raise ConfigurationError(f"no release {release!r} is loaded (claims-etl reference list)")
    return row[0], row[1]


def _old_lines(settings: Settings, low: int, high: int) -> pl.DataFrame:
    """The warehouse's priced lines of claims [low, high]: amounts as exact integers to compare, and
    the stored text of every column for the history rows."""
    stored = read_target_frame(
        settings, "warehouse/priced_lines_between", stage="reprice", parameters=[str(low), str(high)]
    )
    as_int = {
        "fee_schedule_cents": ("fee_schedule_amount", 100),
        "adjustment_factor_e5": ("adjustment_factor", 100_000),
        "allowed_cents": ("allowed_amount", 100),
    }
    return stored.with_columns(
        pl.col("claim_id").cast(pl.Int64),
        pl.col("line_number").cast(pl.Int32),
        *(
            (pl.col(column).cast(pl.Decimal(18, 5)) * scale).cast(pl.Int64).alias(name)
            for name, (column, scale) in as_int.items()
        ),
    )


def changed_claims(old: pl.DataFrame, new: pl.DataFrame) -> pl.Series:
    """Claim ids whose lines' amounts differ between the warehouse (`old`) and the new prices (`new`,
    `schemas.PRICED_LINES`), or whose lines are not the same set."""
    keys = ["claim_id", "line_number"]
    both = new.select(*keys, *AMOUNTS).join(
        old.select(*keys, *(pl.col(a).alias(f"{a}_old") for a in AMOUNTS)), on=keys, how="full", coalesce=True
    )
    differs = pl.any_horizontal(pl.col(a).ne_missing(pl.col(f"{a}_old")) for a in AMOUNTS)
    return both.filter(differs).get_column("claim_id").unique().sort()


def _history(old: pl.DataFrame, claim_ids: pl.Series, run_id: str, at: datetime) -> pl.DataFrame:
    return old.filter(pl.col("claim_id").is_in(claim_ids.implode())).select(
        *(
            pl.col(column).cast(pl.String) if column not in ("claim_id", "line_number", "units", "facility") else column
            for column in load.LOAD_SCHEMAS["priced_claim_lines"].names
        ),
        pl.lit(run_id).alias("replaced_by_run"),
        pl.lit(at.replace(tzinfo=None), dtype=pl.Datetime("us")).alias("replaced_at"),
    )


def _only(priced: Priced, claim_ids: pl.Series) -> Priced:
    keep = pl.col("claim_id").is_in(claim_ids.implode())
    return Priced(claims=priced.claims.filter(keep), lines=priced.lines.filter(keep))


def _chunk(
    settings: Settings, target: Target | None, result: RepriceResult, extracted: Extracted, at: datetime
) -> bool:
    """Price one chunk of candidates again and, unless a dry run, replace the changed claims; True
    when it wrote."""
    frames, _ = reference_frames(settings)
    checked = validate(
        extracted.claims, extracted.lines, frames, run_date=settings.effective_run_date(), rules=settings.rules().config
    )
    result.claims_not_priceable += checked.rejected.height
    priced = price_keyed(checked.accepted_claims, checked.accepted_keyed_lines, frames)
    if priced.claims.is_empty():
        return False
    ids = priced.claims.get_column("claim_id")
    old = _old_lines(settings, int(ids.min()), int(ids.max()))  # type: ignore[arg-type]
    old = old.filter(pl.col("claim_id").is_in(ids.implode()))
    changed = changed_claims(old, priced.lines)
    if changed.is_empty():
        return False
    replaced = _only(priced, changed)
    result.claims_changed += changed.len()
    result.allowed_before_cents += int(old.filter(pl.col("claim_id").is_in(changed.implode()))["allowed_cents"].sum())
    result.allowed_after_cents += int(replaced.lines["allowed_cents"].sum())
    if target is None:
        return False
    # The replaced claims' warnings are deleted with their rows (load.WAREHOUSE_TABLES): written again.
    warnings = checked.warnings.filter(pl.col("claim_id").is_in(changed.implode()))
    low, high = int(changed[0]), int(changed[-1])
    chunk = load.Chunk(priced=replaced, rejected=checked.rejected.clear(), low=low, high=high, warnings=warnings)
    tables = load.chunk_tables(chunk, result.run_id, at)
    history = load.arrow_history(_history(old, changed, result.run_id, at))
    write_tables(target, load.ChunkTables(tables.tables, tables.recovered, history))
    return True


def reprice(settings: Settings, release: str, *, dry_run: bool = False) -> RepriceResult:
    """Price again every processed claim with a line in `release`'s window and replace, chunk by
    chunk, those whose amounts change; with `dry_run`, only count them and their dollars."""
    started, clock = datetime.now(UTC), time.perf_counter()
    result = RepriceResult(run_id=f"reprice-{new_run_id(started)}", release=release, dry_run=dry_run)
    with logs.run_context(result.run_id, "reprice"), source_connection(settings) as source:
        if not source.execute(sql.load("source/reprice_lock")).fetchone()[0]:  # type: ignore[index]
            raise ConfigurationError("another reprice is running; try again when it has finished")
        valid_from, valid_until = _window(source, release)
        window = {"valid_from": valid_from, "valid_until": valid_until}
        chunks = source.execute(
            sql.load("source/reprice_chunks"), window | {"claims_per_chunk": settings.load_chunk_claims}
        ).fetchall()
        source.commit()
        target = None if dry_run else connect_target(settings)
        try:
            if target is not None:
                run_records.record_start(target, result.run_id, started, {"reprice": release})
            _work(settings, target, result, chunks, (valid_from, valid_until), started)
        except BaseException:
            if target is not None:
                _record(target, result, "failed", clock)
            raise
        else:
            if target is not None:
                _record(target, result, "succeeded", clock)
        finally:
            result.seconds = time.perf_counter() - clock
            if target is not None:
                target.close()
    log.info(
        "reprice %s: %d of %d claims changed",
        release,
        result.claims_changed,
        result.claims_read,
        extra={"run_id": result.run_id},  # after its context: the run id by hand
    )
    return result


def _work(
    settings: Settings,
    target: Target | None,
    result: RepriceResult,
    chunks: list[tuple[int, int, int]],
    window: tuple[date, date],
    at: datetime,
) -> None:
    written = 0
    for low, high, _ in chunks:
        extracted = repriced(settings, *window, low, high)
        result.claims_read += extracted.claims.height
        if _chunk(settings, target, result, extracted, at):
            written += 1
            fault_hooks.point(settings, "reprice_after_commit", chunk=written)


def _record(target: Target, result: RepriceResult, status: str, clock: float) -> None:
    """The reprice's row in etl_runs: claims read, claims replaced (as priced), its wall time."""
    result.seconds = time.perf_counter() - clock
    counts = (result.claims_read, result.claims_changed, 0)
    run_records.record_finish(
        target, result.run_id, finished_at=datetime.now(UTC), status=status, counts=counts, stages=[]
    )
