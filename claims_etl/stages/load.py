"""Load stage: priced and rejected claims as the warehouse tables' rows in their load schemas, cut
into chunks of claims by claim_id range (`chunks`), each chunk one warehouse transaction: written by
stages/write.py with turbodbc's column-wise Arrow inserts (or COPY, for a PostgreSQL warehouse given
by URL), its claims the warehouse cannot take left out by stages/isolate.py; then its claims' source
status is flipped (claims_etl/engine/marking.py).

Order and repair: a chunk's warehouse rows commit first, then its claims are marked in the source.
A crash between the two leaves those claims pending in a dead run's range lease; the next run
recovers them and deletes their warehouse rows before inserting again, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from claims_etl.stages.columns import present
from claims_etl.stages.price import Priced


def scaled_text(column: str, decimals: int) -> pl.Expr:
    """An integer scaled by 10^decimals as an exact decimal string (-1205, 2 -> "-12.05"; 100000, 5 ->
    "1.00000"): turbodbc takes no decimal128, floats are not money, and every target converts a decimal
    string to its decimal column exactly. Polars' decimal division and cast to text do it in one pass,
    cheaper than assembling sign, whole and zero-padded fraction (benchmarks/LOG.md)."""
    scale = pl.lit(10**decimals).cast(pl.Decimal(18, decimals))
    return (pl.col(column).cast(pl.Decimal(18, 0)) / scale).cast(pl.String).alias(column)


def cents_text(column: str) -> pl.Expr:
    """Integer cents as an exact decimal string ("-12.05")."""
    return scaled_text(column, 2)


# Load schemas: column order = the INSERT's column order (turbodbc binds by position). Types are the
# few turbodbc accepts: int64, string (not large_string), timestamp[us]; money as decimal strings.
LOAD_SCHEMAS: dict[str, pa.Schema] = {
    "priced_claims": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("batch_id", pa.string()),
            ("run_id", pa.string()),
            ("billing_npi", pa.string()),
            ("mac", pa.string()),
            ("locality", pa.string()),
            ("place_of_service", pa.string()),
            ("line_count", pa.int64()),
            ("total_charge", pa.string()),
            ("total_allowed", pa.string()),
            ("priced_at", pa.timestamp("us")),
        ]
    ),
    "priced_claim_lines": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("line_number", pa.int64()),
            ("procedure_code", pa.string()),
            ("modifier_1", pa.string()),
            ("units", pa.int64()),
            ("charge", pa.string()),
            ("facility", pa.int64()),
            ("fee_schedule_amount", pa.string()),
            ("adjustment_factor", pa.string()),
            ("allowed_amount", pa.string()),
            ("pricing_note", pa.string()),
            ("run_id", pa.string()),
            ("rvu_release", pa.string()),
            ("cf_kind", pa.string()),
        ]
    ),
    "rejected_claims": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("batch_id", pa.string()),
            ("run_id", pa.string()),
            ("rule_ids", pa.string()),
            ("rejected_at", pa.timestamp("us")),
        ]
    ),
    # A warn-severity rule (rules file, docs/spec.md §5.1) a priced claim broke.
    "claim_warnings": pa.schema([("claim_id", pa.int64()), ("rule_id", pa.string()), ("run_id", pa.string())]),
}
WAREHOUSE_TABLES = tuple(LOAD_SCHEMAS)  # the tables a chunk writes
REPAIR_SCHEMA = pa.schema([("claim_id", pa.int64()), ("run_id", pa.string())])  # warehouse/delete_run_claims.sql
# A repriced claim's previous lines: priced_claim_lines' load schema, and which run replaced them when.
HISTORY_SCHEMA = pa.schema(
    [*LOAD_SCHEMAS["priced_claim_lines"], ("replaced_by_run", pa.string()), ("replaced_at", pa.timestamp("us"))]
)


def arrow_table(frame: pl.DataFrame, table: str) -> pa.Table:
    """A single-chunk Arrow table in the load schema (turbodbc rejects chunked columns)."""
    schema = LOAD_SCHEMAS[table]
    arrow = frame.select(schema.names).to_arrow()
    return arrow.cast(schema).combine_chunks()


def warehouse_frames(
    priced: Priced, rejected: pl.DataFrame, run_id: str, at: datetime, warnings: pl.DataFrame | None = None
) -> dict[str, pl.DataFrame]:
    """The warehouse tables' rows for one chunk, in load-schema column names; `warnings`
    (schemas.WARNINGS) only of the chunk's priced claims."""
    run = pl.lit(run_id)
    stamp = pl.lit(at.replace(tzinfo=None), dtype=pl.Datetime("us"))
    return {
        "priced_claims": priced.claims.select(
            "claim_id",
            "batch_id",
            run.alias("run_id"),
            "billing_npi",
            "mac",
            "locality",
            "place_of_service",
            "line_count",
            cents_text("total_charge_cents").alias("total_charge"),
            cents_text("total_allowed_cents").alias("total_allowed"),
            stamp.alias("priced_at"),
        ),
        "priced_claim_lines": priced.lines.select(
            "claim_id",
            "line_number",
            "procedure_code",
            pl.when(present("modifier_1")).then(pl.col("modifier_1")).alias("modifier_1"),  # blank = absent, as V06
            "units",
            cents_text("charge_cents").alias("charge"),
            "facility",
            cents_text("fee_schedule_cents").alias("fee_schedule_amount"),
            scaled_text("adjustment_factor_e5", 5).alias("adjustment_factor"),
            cents_text("allowed_cents").alias("allowed_amount"),
            "pricing_note",
            run.alias("run_id"),
            "rvu_release",
            "cf_kind",
        ),
        "rejected_claims": rejected.select(
            "claim_id", "batch_id", run.alias("run_id"), "rule_ids", stamp.alias("rejected_at")
        ),
        "claim_warnings": (
            pl.DataFrame(schema={"claim_id": pl.Int64, "rule_id": pl.String}) if warnings is None else warnings
        ).select("claim_id", "rule_id", run.alias("run_id")),
    }


@dataclass(frozen=True)
class Chunk:
    """One warehouse transaction's worth of claims."""

    priced: Priced
    rejected: pl.DataFrame  # schemas.REJECTED
    low: int  # claim_id range of the chunk, inclusive: every claim of the run in it is in the chunk
    high: int
    # A run's chunk: (claim_id, run_id) of the rows to delete first, those of the runs its recovered
    # claims' leases were taken from (extract.REPAIRS). None (a reprice): every row of a recovered claim.
    repairs: pl.DataFrame | None = None
    warnings: pl.DataFrame | None = None  # schemas.WARNINGS of the chunk's priced claims

    @property
    def claim_count(self) -> int:
        return self.priced.claims.height + self.rejected.height

    def recovered_ids(self) -> pa.Table:
        """What the warehouse deletes before inserting: (claim_id, run_id) pairs of a run's chunk, or
        the recovered claim ids of a reprice's."""
        if self.repairs is not None:
            pairs = self.repairs.select(pl.col("claim_id").cast(pl.Int64), pl.col("run_id").cast(pl.String))
            return pairs.to_arrow().cast(REPAIR_SCHEMA).combine_chunks()
        ids = pl.concat(
            [
                self.priced.claims.filter("recovered").select("claim_id"),
                self.rejected.filter("recovered").select("claim_id"),
            ]
        )
        return ids.to_arrow().combine_chunks()


def _range(frame: pl.DataFrame, low: int, high: int) -> pl.DataFrame:
    """Rows with claim_id in [low, high] of a frame sorted by claim_id: a zero-copy slice."""
    ids = frame.get_column("claim_id")
    start, stop = ids.search_sorted(low, side="left"), ids.search_sorted(high, side="right")
    return frame.slice(start, stop - start)


def chunk_spans(claims: int, claims_per_chunk: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each chunk of `claims` claims: `claims_per_chunk` each, except that the
    last of several is a quarter chunk. Each chunk's source marking overlaps the next chunk's write,
    but the last one's has nothing left to overlap, so it is kept short (docs/performance.md).

    >>> list(chunk_spans(75_000, 20_000))
    [(0, 20000), (20000, 20000), (40000, 20000), (60000, 10000), (70000, 5000)]
    >>> list(chunk_spans(20_000, 20_000))
    [(0, 20000)]
    """
    tail = claims_per_chunk // 4 if claims > claims_per_chunk else 0
    body = claims - tail
    for start in range(0, body, claims_per_chunk):
        yield start, min(claims_per_chunk, body - start)
    if tail:
        yield body, tail


def chunks(
    rejected: pl.DataFrame,
    priced: Priced,
    claims_per_chunk: int,
    repairs: pl.DataFrame | None = None,
    warnings: pl.DataFrame | None = None,
) -> Iterator[Chunk]:
    """Split the run into chunks (`chunk_spans`) by claim_id range (all frames are sorted by
    claim_id, so each chunk is a slice, not a filter over the whole run). `repairs`: a run's
    (claim_id, run_id) rows to delete first, sorted by claim_id; `warnings`: the priced claims'
    warn-rule hits (schemas.WARNINGS), sorted by claim_id."""
    rejected = rejected.sort("claim_id")
    ids = pl.concat([priced.claims.get_column("claim_id"), rejected.get_column("claim_id")]).sort()
    for start, length in chunk_spans(ids.len(), claims_per_chunk):
        window = ids.slice(start, length)
        low, high = int(window[0]), int(window[-1])
        yield Chunk(
            priced=Priced(claims=_range(priced.claims, low, high), lines=_range(priced.lines, low, high)),
            rejected=_range(rejected, low, high),
            low=low,
            high=high,
            repairs=None if repairs is None else _range(repairs, low, high),
            warnings=None if warnings is None or warnings.is_empty() else _range(warnings, low, high),
        )


@dataclass(frozen=True)
class ChunkTables:
    """One chunk as the warehouse receives it: Arrow tables in load schema, plus the recovered claim
    ids to delete first. Picklable, so a writer process can take it (claims_etl/engine/writers.py)."""

    tables: dict[str, pa.Table]
    recovered: pa.Table  # claim_id, or (claim_id, run_id): deleted first (warehouse/delete_[run_]claims.sql)
    history: pa.Table | None = None  # HISTORY_SCHEMA rows kept before a reprice replaces them
    fence: str | None = None  # a run's chunk: its run_id, checked in etl_runs before the commit
    claims: int = 0  # the chunk's claims, quarantined ones included
    low: int = 0  # its claim_id range
    high: int = 0

    @property
    def rows(self) -> int:
        return sum(table.num_rows for table in self.tables.values())

    def claim_ids(self) -> pa.Array:
        loaded = [self.tables[t].column("claim_id") for t in ("priced_claims", "rejected_claims") if t in self.tables]
        return pa.chunked_array(loaded, type=pa.int64()).combine_chunks() if loaded else pa.array([], pa.int64())

    def without(self, claim_ids: pa.Array) -> ChunkTables:
        """The chunk less these claims (each table filtered by claim_id; all in Arrow, no row loop)."""

        def keep(table: pa.Table) -> pa.Table:
            return table.filter(pc.invert(pc.is_in(table.column("claim_id"), value_set=claim_ids))).combine_chunks()

        tables = {name: keep(table) for name, table in self.tables.items()}
        kept = {name: table for name, table in tables.items() if table.num_rows}
        return replace(self, tables=kept, recovered=keep(self.recovered))


def arrow_history(frame: pl.DataFrame) -> pa.Table:
    """History rows (`HISTORY_SCHEMA`) as one single-chunk Arrow table, as turbodbc takes them."""
    return frame.select(HISTORY_SCHEMA.names).to_arrow().cast(HISTORY_SCHEMA).combine_chunks()


def chunk_tables(chunk: Chunk, run_id: str, at: datetime, *, fenced: bool = False) -> ChunkTables:
    """The chunk's Arrow tables; `fenced` (a run's chunk): its commit is refused once the run was taken
    over (stages/write.write_tables)."""
    frames = warehouse_frames(chunk.priced, chunk.rejected, run_id, at, chunk.warnings)
    tables = {table: arrow_table(frame, table) for table, frame in frames.items() if frame.height}
    return ChunkTables(
        tables=tables,
        recovered=chunk.recovered_ids(),
        fence=run_id if fenced else None,
        claims=chunk.claim_count,
        low=chunk.low,
        high=chunk.high,
    )
