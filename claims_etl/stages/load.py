"""Load stage: priced and rejected claims into the warehouse with turbodbc's column-wise Arrow
inserts, one target transaction per chunk of claims, then their source status flipped.

Order and repair: a chunk's warehouse rows commit first, then its claims are marked in the source
(and their leases released). A crash between the two leaves those claims leased by a dead run; the
next run recovers them and deletes their warehouse rows before inserting again, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg
import pyarrow as pa

from claims_etl.db import sql
from claims_etl.db.connections import Target
from claims_etl.errors import StageError
from claims_etl.stages.keying import present
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
}
WAREHOUSE_TABLES = tuple(LOAD_SCHEMAS)  # the tables a chunk writes
# A repriced claim's previous lines: priced_claim_lines' load schema, and which run replaced them when.
HISTORY_SCHEMA = pa.schema(
    [*LOAD_SCHEMAS["priced_claim_lines"], ("replaced_by_run", pa.string()), ("replaced_at", pa.timestamp("us"))]
)


def insert_statement(target: Target, table: str) -> str:
    """INSERT for a warehouse table (queries/warehouse/insert_<table>.sql), its columns in
    LOAD_SCHEMAS order; every value is bound."""
    return target.statement(f"warehouse/insert_{table}")


def arrow_table(frame: pl.DataFrame, table: str) -> pa.Table:
    """A single-chunk Arrow table in the load schema (turbodbc rejects chunked columns)."""
    schema = LOAD_SCHEMAS[table]
    arrow = frame.select(schema.names).to_arrow()
    return arrow.cast(schema).combine_chunks()


def warehouse_frames(priced: Priced, rejected: pl.DataFrame, run_id: str, at: datetime) -> dict[str, pl.DataFrame]:
    """The three warehouse tables' rows for one chunk, in load-schema column names."""
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
    }


@dataclass(frozen=True)
class Chunk:
    """One warehouse transaction's worth of claims."""

    priced: Priced
    rejected: pl.DataFrame  # schemas.REJECTED
    low: int  # claim_id range of the chunk, inclusive: every claim of the run in it is in the chunk
    high: int

    @property
    def claim_count(self) -> int:
        return self.priced.claims.height + self.rejected.height

    def recovered_ids(self) -> pa.Table:
        """Claims a dead run may have written already: deleted from the warehouse before inserting."""
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


def chunks(rejected: pl.DataFrame, priced: Priced, claims_per_chunk: int) -> Iterator[Chunk]:
    """Split the run into chunks (`chunk_spans`) by claim_id range (all frames are sorted by
    claim_id, so each chunk is a slice, not a filter over the whole run)."""
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
        )


FaultHook = Callable[[str], None]


def _no_checkpoint(_: str) -> None:
    return None


@dataclass(frozen=True)
class ChunkTables:
    """One chunk as the warehouse receives it: Arrow tables in load schema, plus the recovered claim
    ids to delete first. Picklable, so a writer process can take it (claims_etl/engine/writers.py)."""

    tables: dict[str, pa.Table]
    recovered: pa.Table
    history: pa.Table | None = None  # HISTORY_SCHEMA rows kept before a reprice replaces them

    @property
    def rows(self) -> int:
        return sum(table.num_rows for table in self.tables.values())


def arrow_history(frame: pl.DataFrame) -> pa.Table:
    """History rows (`HISTORY_SCHEMA`) as one single-chunk Arrow table, as turbodbc takes them."""
    return frame.select(HISTORY_SCHEMA.names).to_arrow().cast(HISTORY_SCHEMA).combine_chunks()


def chunk_tables(chunk: Chunk, run_id: str, at: datetime) -> ChunkTables:
    frames = warehouse_frames(chunk.priced, chunk.rejected, run_id, at)
    tables = {table: arrow_table(frame, table) for table, frame in frames.items() if frame.height}
    return ChunkTables(tables=tables, recovered=chunk.recovered_ids())


def write_tables(target: Target, chunk: ChunkTables, checkpoint: FaultHook = _no_checkpoint) -> int:
    """Write one chunk in one target transaction; returns rows written. Rolls back on failure.
    `checkpoint` is called at named points (fault injection in crash tests)."""
    with target.errors("warehouse insert failed"):
        cursor = target.connection.cursor()
        try:
            if chunk.history is not None and chunk.history.num_rows:
                cursor.executemanycolumns(target.statement("warehouse/insert_priced_claim_line_history"), chunk.history)
            if chunk.recovered.num_rows:
                for table in WAREHOUSE_TABLES:
                    cursor.executemanycolumns(target.statement("warehouse/delete_claims", table=table), chunk.recovered)
            for table, arrow in chunk.tables.items():
                cursor.executemanycolumns(insert_statement(target, table), arrow)
                checkpoint("during_write")
            target.connection.commit()
        except BaseException:
            target.rollback_quietly()
            raise
        finally:
            cursor.close()
    return chunk.rows


def mark_chunk(
    source: psycopg.Connection[Any], chunk: Chunk, run_id: str, at: datetime, checkpoint: FaultHook = _no_checkpoint
) -> int:
    """Flip the chunk's claims to rejected/processed and release their leases, in one commit."""
    rejected_ids = chunk.rejected.get_column("claim_id").to_list()
    priced_ids = chunk.priced.claims.get_column("claim_id").to_list()
    parameters = {
        "rejected_ids": rejected_ids,
        "priced_ids": priced_ids,
        "run_id": run_id,
        "processed_at": at.astimezone(UTC),
        "low": chunk.low,
        "high": chunk.high,
    }
    expected = [len(rejected_ids), len(priced_ids), chunk.claim_count]  # rejected, processed, leases released
    with source.cursor() as cursor:
        done = []
        for statement in sql.statements("source/mark_claims"):
            cursor.execute(statement, parameters)
            done.append(cursor.rowcount)
        checkpoint("during_mark")
    if done != expected:  # another run took over our leases: never mark what we do not hold
        source.rollback()
        missing = chunk.claim_count - min(done[0] + done[1], done[2])
        raise StageError("load", f"lost the lease on {missing} claims in [{chunk.low}, {chunk.high}]")
    source.commit()
    checkpoint("after_mark")
    return chunk.claim_count
