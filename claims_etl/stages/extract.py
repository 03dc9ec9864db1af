"""Extract stage: lease pending claims to the run, then read them and their lines, one claim_id range
at a time (claims_etl/engine/planning.py), with connectorx in parallel sub-ranges straight into Arrow and Polars."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.db.connections import read_frame
from claims_etl.schemas import CLAIMS, LINES, conform
from claims_etl.settings import Settings


@dataclass(frozen=True)
class Leased:
    recovered: int  # claims taken over from runs that died
    new: int  # pending claims newly leased
    taken_from: tuple[str, ...] = ()  # the dead runs whose leases these were: fenced before any write

    @property
    def total(self) -> int:
        return self.recovered + self.new


# A run's recovered claims: each (claim_id, run_id) whose warehouse rows the load deletes first.
REPAIRS: dict[str, pl.DataType] = {"claim_id": pl.Int64(), "run_id": pl.String()}


@dataclass(frozen=True)
class Extracted:
    """Claims and their service lines as read from the source: the input of `validate`.

    Invariant: both frames hold exactly their schema's columns, claims in claim_id order and lines in
    (claim_id, line_number) order, and the lines are those of these claims (all of each claim's).

    Attributes
    ----------
    claims : polars.DataFrame
        One row per claim in the `schemas.CLAIMS` columns (money as ``*_cents``; no patient_id).
    lines : polars.DataFrame
        One row per service line in the `schemas.LINES` columns.

    Examples
    --------
    >>> import polars as pl
    >>> from claims_etl import Extracted
    >>> from claims_etl.schemas import CLAIMS, LINES
    >>> nothing = Extracted(claims=pl.DataFrame(schema=CLAIMS), lines=pl.DataFrame(schema=LINES))
    >>> nothing.claims.columns[:4], nothing.lines.height
    (['claim_id', 'batch_id', 'patient_dob', 'billing_npi'], 0)
    """

    claims: pl.DataFrame  # schemas.CLAIMS
    lines: pl.DataFrame  # schemas.LINES
    # (claim_id, run_id): for each recovered claim, each run whose warehouse rows of it the load deletes
    # first (the lease's `taken_from`); only a run's own leases have any.
    repairs: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REPAIRS))


def repair_pairs(claims: pl.DataFrame) -> pl.DataFrame:
    """(claim_id, run_id) pairs from the leases' `taken_from` (space-separated run ids), in claim order."""
    if "taken_from" not in claims.columns:
        return pl.DataFrame(schema=REPAIRS)
    return (
        claims.filter(pl.col("taken_from").is_not_null() & (pl.col("taken_from") != ""))
        .select(pl.col("claim_id").cast(pl.Int64), pl.col("taken_from").cast(pl.String).str.split(" ").alias("run_id"))
        .explode("run_id")
        .sort("claim_id")
    )


def lock_run(connection: psycopg.Connection[Any], run_id: str) -> None:
    """Mark the run alive for as long as this session lasts (see source/lock_run.sql)."""
    connection.execute(sql.load("source/lock_run"), {"run_id": run_id})
    connection.commit()


def live_runs(connection: psycopg.Connection[Any], run_ids: list[str]) -> set[str]:
    """Those of `run_ids` whose run lock some session still holds (source/live_runs.sql): asking
    takes no lock. Leaves the connection's transaction as it was."""
    if not run_ids:
        return set()
    rows = connection.execute(sql.load("source/live_runs"), {"run_ids": run_ids}).fetchall()
    return {str(row[0]) for row in rows}


def unpriceable_years(connection: psycopg.Connection[Any], settings: Settings) -> dict[int, int]:
    """Pending claims (of `settings.batch_id`) with a line that no loaded release prices, counted by
    service year: a missing fee schedule is a configuration error, not the claims' (docs/spec.md §7)."""
    rows = connection.execute(sql.load("source/unpriceable_years"), {"batch_id": settings.batch_id}).fetchall()
    connection.commit()
    return {int(year): int(claims) for year, claims in rows}


def lease(connection: psycopg.Connection[Any], settings: Settings, run_id: str) -> Leased:
    """Take over dead runs' leases, then lease pending claims (batch and limit applied), in one commit."""
    with connection.cursor() as cursor:
        cursor.execute(sql.load("source/lease_lock"))
        cursor.execute(sql.load("source/lease_recover"), {"run_id": run_id})
        taken = {str(dead): int(claims) for dead, claims in cursor.fetchall()}
        cursor.execute(
            sql.load("source/lease_pending"),
            {
                "run_id": run_id,
                "batch_id": settings.batch_id,
                "limit": settings.limit,
                "skip_unpriceable": settings.skip_unpriceable,
            },
        )
        new = cursor.rowcount
        cursor.execute(sql.load("source/ranges_forget"))
    connection.commit()
    return Leased(recovered=sum(taken.values()), new=max(new, 0), taken_from=tuple(sorted(taken)))


def _read(settings: Settings, query: str, *, between: tuple[int, int] | None = None) -> pl.DataFrame:
    """A query into Polars. With `between`, read in `settings.partitions` parallel claim_id
    sub-ranges of it (given, so connectorx skips its min/max query); without, in one piece (a query
    with a LIMIT must be: connectorx wraps each partition as a subquery, each applying the LIMIT)."""
    partitioning: dict[str, Any] = {}
    if between is not None and settings.partitions > 1 and between[1] > between[0]:
        partitioning = {
            "partition_on": "claim_id",
            # high + 1: the last claim is inside whether connectorx's upper bound is inclusive or not;
            # the query's own BETWEEN keeps the range exact.
            "partition_range": (between[0], between[1] + 1),
            "partition_num": min(settings.partitions, between[1] - between[0] + 1),
        }
    return read_frame(settings, query, stage="extract", **partitioning)


def _claims_and_lines(
    settings: Settings,
    queries: tuple[str, str],
    values: dict[str, sql.SqlValue],
    *,
    what: str,
    between: tuple[int, int] | None = None,
) -> Extracted:
    """A claims query and its lines query, read and conformed to the stage-boundary schemas, in
    claim and line order. `what` names them in schema errors ("extracted claims")."""
    claims_query, lines_query = queries
    claims = _read(settings, sql.render(claims_query, **values), between=between)
    lines = _read(settings, sql.render(lines_query, **values), between=between)
    return Extracted(
        claims=conform(claims, CLAIMS, name=f"{what} claims").sort("claim_id"),
        lines=conform(lines, LINES, name=f"{what} lines").sort("claim_id", "line_number"),
        repairs=repair_pairs(claims),
    )


def extract(settings: Settings, run_id: str, low: int, high: int) -> Extracted:
    """The claims the run leased in claim_id range [low, high], and their lines."""
    bounds: dict[str, sql.SqlValue] = {"run_id": run_id, "low": low, "high": high}
    queries = ("extract/claims", "extract/lines")
    return _claims_and_lines(settings, queries, bounds, what="extracted", between=(low, high))


def marked_rejected(settings: Settings, run_id: str, low: int, high: int) -> Extracted:
    """The claims this run already rejected and marked in claim_id range [low, high], and their lines
    (a retried range's earlier attempt's, whose rule ids only the warehouse holds)."""
    bounds: dict[str, sql.SqlValue] = {"run_id": run_id, "low": low, "high": high}
    queries = ("extract/marked_rejected_claims", "extract/marked_rejected_lines")
    return _claims_and_lines(settings, queries, bounds, what="marked")


def repriced(settings: Settings, valid_from: date, valid_until: date, low: int, high: int) -> Extracted:
    """Processed claims in claim_id range [low, high] with a line served in [valid_from, valid_until),
    and all their lines, each claim flagged `recovered` (its warehouse rows are replaced)."""
    values: dict[str, sql.SqlValue] = {"valid_from": valid_from, "valid_until": valid_until, "low": low, "high": high}
    return _claims_and_lines(settings, ("extract/repriced_claims", "extract/repriced_lines"), values, what="repriced")


def read_pending(settings: Settings, *, batch_id: str | None = None, limit: int | None = None) -> Extracted:
    """Pending claims and their lines, read-only: for notebooks and dry runs.

    Invariant: it leases nothing and changes no status, so a run may still take these claims; with
    `limit` it returns the lowest pending claim ids, each with all its lines.

    Parameters
    ----------
    settings : Settings
        Where the source is (``source_url``). Its own ``batch_id`` and ``limit`` (a run's) are not
        used here: pass them as arguments.
    batch_id : str, optional
        Only claims of this submission batch; ``None`` for every batch.
    limit : int, optional
        At most this many claims; ``None`` for all pending claims.

    Returns
    -------
    Extracted
        The claims (`schemas.CLAIMS`, ``recovered`` false) and their lines (`schemas.LINES`), in
        claim_id order; empty frames of those schemas when nothing is pending.

    Examples
    --------
    Needs the source database:

    >>> import claims_etl as ce
    >>> settings = ce.Settings(source_url="postgresql://etl@staging-host:5432/claims")
    >>> pending = ce.read_pending(settings, batch_id="B0001", limit=1_000)  # doctest: +SKIP
    >>> pending.claims.height <= 1_000, pending.claims.get_column("claim_id").is_sorted()  # doctest: +SKIP
    (True, True)
    """
    values: dict[str, sql.SqlValue] = {"batch_id": batch_id, "limit": limit}
    queries = ("extract/pending_claims", "extract/pending_lines")
    return _claims_and_lines(settings, queries, values, what="pending")
