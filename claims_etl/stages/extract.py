"""Extract stage: the claims a run leased in one claim_id range (claims_etl/engine/leases.py) and
their lines, read with connectorx in parallel sub-ranges straight into Arrow and Polars; and the
source's other reads of claims (a retried range's earlier rejections, a reprice, a dry run).

A range's claims and lines are read in one statement, so from one snapshot (queries/extract/range.sql).
A range whose read fails on a value (not a lost connection) is read again in halves until the claims
that cannot be read are found: those come back in `Extracted.unreadable` (quarantined by
claims_etl/engine/marking.py), the rest go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from itertools import pairwise

import polars as pl

from claims_etl.db import sql
from claims_etl.db.source_reads import read_frame
from claims_etl.errors import SourceError, StageError
from claims_etl.faults import Faults, no_faults
from claims_etl.schemas import CLAIMS, LINES, conform
from claims_etl.settings import Settings

# A run's recovered claims: each (claim_id, run_id) whose warehouse rows the load deletes first.
REPAIRS: dict[str, pl.DataType] = {"claim_id": pl.Int64(), "run_id": pl.String()}
# Claims of a range whose source rows cannot be read, and why (no value in the reason: no PHI).
UNREADABLE: dict[str, pl.DataType] = {"claim_id": pl.Int64(), "reason": pl.String()}
# More unreadable claims than this in one range is not a few bad rows but something wrong with the
# source as a whole (a column type the reader does not know): the run fails rather than quarantine it.
MAX_UNREADABLE = 100


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
    # first (its range lease's `taken_from`); only a run's own leases have any.
    repairs: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REPAIRS))
    # (claim_id, reason) of the range's claims that cannot be read (`extract`): quarantined, not loaded.
    unreadable: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UNREADABLE))


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


def partition_bounds(low: int, high: int, partitions: int) -> list[tuple[int, int]]:
    """[low, high] cut into at most `partitions` consecutive inclusive sub-ranges of near-equal width,
    computed in Python ints: the width of a range from -2^63 to 2^63 - 1 does not fit a bigint, and
    connectorx's own partitioning (int64 arithmetic, an exclusive upper bound past high) read nothing
    or failed on such a range (issue 29). Every bound is a claim_id inside [low, high].

    >>> partition_bounds(1, 10, 3)
    [(1, 3), (4, 6), (7, 10)]
    >>> partition_bounds(5, 6, 4)
    [(5, 5), (6, 6)]
    >>> partition_bounds(-(2**63), 2**63 - 1, 2)
    [(-9223372036854775808, -1), (0, 9223372036854775807)]
    """
    count = max(1, min(partitions, high - low + 1))
    edges = [low + (high - low + 1) * k // count for k in range(count + 1)]  # edges[-1] is high + 1
    return [(start, stop - 1) for start, stop in pairwise(edges)]


def _read(settings: Settings, query: str | list[str], faults: Faults = no_faults) -> pl.DataFrame:
    """A query into Polars; a list of queries is read side by side, one connection each, into one frame."""
    frame = read_frame(settings, query, stage="extract")
    faults("pause_after_read")  # tests/integration/pipeline/test_consistent_reads.py commits here
    return frame


# A one-statement read (queries/extract/range.sql and its siblings) gives a row per claim and per
# line, told apart by `is_line`, the two kinds sharing columns of one type (t* text, d* date, n* bigint):
# each stage-boundary column and the read's column it comes from.
_CLAIM_COLUMNS = {
    "claim_id": "claim_id",
    "batch_id": "t1",
    "patient_dob": "d1",
    "billing_npi": "t2",
    "rendering_npi": "t3",
    "mac": "t4",
    "locality": "t5",
    "place_of_service": "t6",
    "diagnosis_1": "t7",
    "diagnosis_2": "t8",
    "diagnosis_3": "t9",
    "diagnosis_4": "t10",
    "total_charge_cents": "n1",
    "received_date": "d2",
    "recovered": "recovered",
    "unrepresentable": "unrepresentable",
    "taken_from": "t11",  # the lease's dead owners (repair_pairs), not a stage column
}
_LINE_COLUMNS = {
    "claim_id": "claim_id",
    "line_number": "line_number",
    "service_date": "d1",
    "procedure_code": "t1",
    "modifier_1": "t2",
    "modifier_2": "t3",
    "modifier_3": "t4",
    "modifier_4": "t5",
    "units": "n1",
    "charge_cents": "n2",
    "place_of_service": "t6",
    "unrepresentable": "unrepresentable",
}


def split_rows(rows: pl.DataFrame, *, what: str) -> Extracted:
    """Claims and lines read together by one statement, apart again: conformed to the stage-boundary
    schemas, in claim and line order. `what` names them in schema errors ("extracted claims")."""
    is_line = pl.col("is_line")
    claims, lines = pl.collect_all(
        [
            rows.lazy().filter(~is_line).select(pl.col(read).alias(name) for name, read in _CLAIM_COLUMNS.items()),
            rows.lazy().filter(is_line).select(pl.col(read).alias(name) for name, read in _LINE_COLUMNS.items()),
        ]
    )
    return Extracted(
        claims=conform(claims, CLAIMS, name=f"{what} claims").sort("claim_id"),
        lines=conform(lines, LINES, name=f"{what} lines").sort("claim_id", "line_number"),
        repairs=repair_pairs(claims),
    )


def _claims_with_lines(
    settings: Settings,
    query: str,
    values: dict[str, sql.SqlValue],
    *,
    what: str,
) -> Extracted:
    """Claims and their lines read by ONE statement (one snapshot: a claim and its lines are never seen
    from two moments), split into the stage-boundary frames (`split_rows`)."""
    return split_rows(_read(settings, sql.render(query, **values)), what=what)


_CONNECTION_HINTS = (
    "connect",
    "fatal",
    "terminating",
    "timed out",
    "timeout",
    "closed",
    "broken pipe",
    "reset by peer",
    "canceling statement",
    "shutting down",
    "starting up",
    "recovery",
)


def unreadable_reason(error: SourceError) -> str | None:
    """Why a read failed on a value, for claim_quarantine.reason (a fixed text: a driver's message may
    quote the value itself); None when the failure is the connection's or the server's (the run fails)."""
    message = error.message.lower()
    if any(hint in message for hint in _CONNECTION_HINTS):
        return None
    if "panicked" in message:
        return "unreadable in the source: a value the reader cannot convert"
    return "unreadable in the source: a value the database cannot compute or send"


def _leased_rows(settings: Settings, run_id: str, low: int, high: int, faults: Faults) -> pl.DataFrame:
    """The range's rows, read in `settings.partitions` parallel claim_id sub-ranges (`partition_bounds`),
    each the range's own statement with narrower bounds: a claim and its lines share a claim_id, so each
    statement still reads whole claims from one snapshot."""
    queries = [
        sql.render("extract/range", run_id=run_id, low=start, high=stop)
        for start, stop in partition_bounds(low, high, settings.partitions)
    ]
    return _read(settings, queries, faults)


def _isolate_unreadable(
    settings: Settings, run_id: str, low: int, high: int, failure: SourceError, faults: Faults
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of [low, high] that can be read, and (claim_id, reason) of the claims that cannot, by
    reading halves of the failing claim_id range again, down to single claims: a few reads of the range
    over for a few bad claims. Raises `failure` when the read fails without any row (the query or the
    source, not a value), and a StageError past MAX_UNREADABLE claims."""
    try:  # the same statement, partitioned alike, for a run that leases nothing: does it work without rows?
        empty = _leased_rows(settings, "", low, high, faults)
    except SourceError:
        raise failure from None
    pieces, unreadable = [], []
    failing = [(low, high, unreadable_reason(failure))]
    while failing:
        start, stop, reason = failing.pop()
        if start == stop:
            unreadable.append((start, reason))
            if len(unreadable) > MAX_UNREADABLE:
                many = f"more than {MAX_UNREADABLE} unreadable claims in [{low}, {high}]"
                raise StageError("extract", f"{many}: {failure.message}")
            continue
        middle = start + (stop - start) // 2
        for half_low, half_high in ((start, middle), (middle + 1, stop)):
            try:
                pieces.append(_leased_rows(settings, run_id, half_low, half_high, faults))
            except SourceError as error:
                if unreadable_reason(error) is None:
                    raise
                failing.append((half_low, half_high, unreadable_reason(error)))
    rows = pl.concat([empty, *pieces], how="vertical_relaxed")
    return rows, pl.DataFrame(unreadable, schema=UNREADABLE, orient="row")


def extract(settings: Settings, run_id: str, low: int, high: int, faults: Faults = no_faults) -> Extracted:
    """The claims the run leased in claim_id range [low, high], and their lines, read in one statement
    per partition (queries/extract/range.sql). Claims whose rows cannot be read (a read failing on a
    value, not on the connection) come back in `unreadable` instead (`_isolate_unreadable`). `faults`:
    the run's fault points (a pause after each read)."""
    try:
        return split_rows(_leased_rows(settings, run_id, low, high, faults), what="extracted")
    except SourceError as error:
        if unreadable_reason(error) is None:
            raise
        rows, unreadable = _isolate_unreadable(settings, run_id, low, high, error, faults)
    return replace(split_rows(rows, what="extracted"), unreadable=unreadable)


def leave_unpriceable(extracted: Extracted, releases: pl.DataFrame) -> Extracted:
    """The range without its claims that no loaded release prices (a line dated before its year's first
    release, or in a year without one; `releases` in `schemas.RELEASES`): those stay pending, as the
    lease would have left them (docs/design.md, Range leases). Recovered claims are kept: the dead run
    may have loaded them. Lines whose date is unrepresentable (null) are V16's."""
    first_in_force = releases.lazy().group_by("year").agg(pl.col("effective_from").min().alias("first"))
    unpriceable_dates = (
        extracted.lines.lazy()
        .select(pl.col("service_date").drop_nulls().unique())
        .with_columns(pl.col("service_date").dt.year().cast(pl.Int32).alias("year"))
        .join(first_in_force, on="year", how="left")
        .filter(pl.col("first").is_null() | (pl.col("service_date") < pl.col("first")))
        .select("service_date")
    )
    left_out = (
        extracted.lines.lazy()
        .join(unpriceable_dates, on="service_date", how="semi")
        .join(extracted.claims.lazy().filter(~pl.col("recovered")), on="claim_id", how="semi")
        .select(pl.col("claim_id").unique())
        .collect()
    )
    if left_out.is_empty():
        return extracted
    kept = ~pl.col("claim_id").is_in(left_out.get_column("claim_id").implode())  # a filter keeps the order
    return replace(extracted, claims=extracted.claims.filter(kept), lines=extracted.lines.filter(kept))


def marked_rejected(settings: Settings, run_id: str, low: int, high: int) -> Extracted:
    """The claims this run already rejected and marked in claim_id range [low, high], and their lines
    (a retried range's earlier attempt's, whose rule ids only the warehouse holds), in one statement."""
    bounds: dict[str, sql.SqlValue] = {"run_id": run_id, "low": low, "high": high}
    return _claims_with_lines(settings, "extract/marked_rejected", bounds, what="marked")


def repriced(settings: Settings, valid_from: date, valid_until: date, low: int, high: int) -> Extracted:
    """Processed claims in claim_id range [low, high] with a line served in [valid_from, valid_until),
    and all their lines, each claim flagged `recovered` (its warehouse rows are replaced), in one statement."""
    values: dict[str, sql.SqlValue] = {"valid_from": valid_from, "valid_until": valid_until, "low": low, "high": high}
    read = _claims_with_lines(settings, "extract/repriced", values, what="repriced")
    return replace(read, claims=read.claims.with_columns(recovered=pl.lit(True)))


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
    return _claims_with_lines(settings, "extract/pending", values, what="pending")


def recoverable_pending(
    settings: Settings, low: int, high: int, batch_id: str | None, *, after: int | None, page: int
) -> Extracted:
    """Read-only, for a dry run: the next `page` pending claims (of `batch_id`, when not None) after
    claim_id `after` (None: from the first) of a dead run's range [low, high] a run would take over
    (engine/leases.recoverable), and their lines, in one statement."""
    values: dict[str, sql.SqlValue] = {"low": low, "high": high, "after": after, "page": page, "batch_id": batch_id}
    return _claims_with_lines(settings, "extract/recoverable", values, what="recoverable")


def runnable_pending(settings: Settings, *, after: int | None, page: int) -> Extracted:
    """Read-only, for a dry run: the next `page` pending claims after claim_id `after` (None: from the
    first) that a run would lease now (`settings.batch_id` and `skip_unpriceable` applied, none leased
    to a run), and their lines, in claim_id order, in one statement. Leases nothing and changes no status."""
    values: dict[str, sql.SqlValue] = {
        "after": after,
        "page": page,
        "batch_id": settings.batch_id,
        "skip_unpriceable": int(settings.skip_unpriceable),
    }
    return _claims_with_lines(settings, "extract/runnable", values, what="pending")
