"""The plain job the engine is measured against (`make bench`, issue 32): pending claims read with
connectorx, validated and priced in memory, the warehouse rows written by ADBC in one transaction,
then the source's statuses set by one UPDATE. No leases, fencing, chunking, quarantine, recovery,
bookkeeping (etl_runs, stage timings, run log) or crash safety: what a careful analyst would write
in an afternoon, and so the strongest simple peer for the engine's speed.

    python benchmarks/peers/polars_adbc.py --source-url postgresql://... --target-url postgresql://...

Steps, each timed (`run` returns the seconds of each):

- read: claims and lines of pending claims, two connectorx reads of 2 partitions each on claim_id
  (two statements, so not one snapshot: nothing writes the source while the benchmark runs);
- reference: the fee schedule frames (`claims_etl.reference.store.read_frames`), as a run without
  a Redis cache reads them;
- validate, price: the project's own pure frame functions (`claims_etl.stages.validate.validate`, and
  `claims_etl.stages.price.price_keyed` on the lines validate keyed, as a run prices), so the outputs
  match exactly; the transform is the same Polars either way, so the comparison measures the
  orchestration around it: one read, one ingest, one UPDATE against the engine's ranges, chunks,
  leases and checks;
- load: the warehouse tables' rows built by plain Polars expressions (money as exact decimals) and
  written with `cursor.adbc_ingest(..., mode="append")` (ADBC's binary COPY), one commit;
- mark: the claims' new statuses (rejected or processed, with the run id and time, as the engine
  sets them) ingested into a temporary table and applied by one set-based UPDATE, committed after
  the warehouse.

Rule V16 (a source value no reader or warehouse can hold, flagged by the staging.etl_* views) is not
evaluated: the peer reads the tables, not the views, and sets `unrepresentable` false. The seeded
benchmark data holds no such value (numeric(12,2) money, dates of the seeded years), and the
benchmark checks the two sides' warehouse rows and statuses equal, so a difference would fail it.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import connectorx as cx
import polars as pl
import pyarrow as pa

if __package__ in (None, ""):  # run as a script: the repository root on the path for claims_etl
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.stages.price import price_keyed
from claims_etl.stages.validate import validate

PARTITIONS = 2
CLAIMS_SQL = """
SELECT claim_id, batch_id, patient_dob, billing_npi, rendering_npi, mac, locality, place_of_service,
       diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4, (total_charge * 100)::bigint AS total_charge_cents,
       received_date
FROM staging.claims
WHERE status = 'pending'
"""
LINES_SQL = """
SELECT l.claim_id, l.line_number::integer AS line_number, l.service_date, l.procedure_code, l.modifier_1,
       l.modifier_2, l.modifier_3, l.modifier_4, l.units::bigint AS units, (l.charge * 100)::bigint AS charge_cents,
       l.place_of_service
FROM staging.claim_lines AS l
JOIN staging.claims AS c ON c.claim_id = l.claim_id
WHERE c.status = 'pending'
"""
MARK_SQL = """
UPDATE staging.claims AS c
SET status = m.status, run_id = '{run_id}', processed_at = '{at}'::timestamptz
FROM peer_marks AS m
WHERE c.claim_id = m.claim_id AND c.status = 'pending'
"""

# The warehouse columns' Arrow types, as the binary COPY of ADBC's ingest needs them: its COPY sends
# each value in its Arrow type's binary form, which the server reads only as the column's own type.
MONEY = pa.decimal128(12, 2)
WAREHOUSE: dict[str, pa.Schema] = {
    "priced_claims": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("batch_id", pa.large_string()),
            ("run_id", pa.large_string()),
            ("billing_npi", pa.large_string()),
            ("mac", pa.large_string()),
            ("locality", pa.large_string()),
            ("place_of_service", pa.large_string()),
            ("line_count", pa.int32()),
            ("total_charge", MONEY),
            ("total_allowed", MONEY),
            ("priced_at", pa.timestamp("us")),
        ]
    ),
    "priced_claim_lines": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("line_number", pa.int16()),
            ("procedure_code", pa.large_string()),
            ("modifier_1", pa.large_string()),
            ("units", pa.int32()),
            ("charge", MONEY),
            ("facility", pa.int16()),
            ("fee_schedule_amount", MONEY),
            ("adjustment_factor", pa.decimal128(9, 5)),
            ("allowed_amount", MONEY),
            ("pricing_note", pa.large_string()),
            ("run_id", pa.large_string()),
            ("rvu_release", pa.large_string()),
            ("cf_kind", pa.large_string()),
        ]
    ),
    "rejected_claims": pa.schema(
        [
            ("claim_id", pa.int64()),
            ("batch_id", pa.large_string()),
            ("run_id", pa.large_string()),
            ("rule_ids", pa.large_string()),
            ("rejected_at", pa.timestamp("us")),
        ]
    ),
    "claim_warnings": pa.schema(
        [("claim_id", pa.int64()), ("rule_id", pa.large_string()), ("run_id", pa.large_string())]
    ),
}


def _scaled(column: str, decimals: int) -> pl.Expr:
    """An integer scaled by 10^decimals as the exact decimal it stands for (1205, 2 -> 12.05)."""
    return (pl.col(column).cast(pl.Decimal(38, 0)) / pl.lit(10**decimals).cast(pl.Decimal(38, decimals))).cast(
        pl.Decimal(38, decimals)
    )


def read(source_url: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pending claims and their lines, in claim (and line) order, in the stage-boundary columns."""
    claims, lines = (
        pl.from_arrow(
            cx.read_sql(source_url, query, partition_on="claim_id", partition_num=PARTITIONS, return_type="arrow")
        )
        for query in (CLAIMS_SQL, LINES_SQL)
    )
    assert isinstance(claims, pl.DataFrame) and isinstance(lines, pl.DataFrame)
    not_flagged = [pl.lit(False).alias("recovered"), pl.lit(False).alias("unrepresentable")]
    claims = claims.with_columns(not_flagged).sort("claim_id")
    lines = lines.with_columns(not_flagged[1]).sort("claim_id", "line_number")
    return claims, lines


def warehouse_tables(
    priced_claims: pl.DataFrame,
    priced_lines: pl.DataFrame,
    rejected: pl.DataFrame,
    warnings: pl.DataFrame,
    run_id: str,
    at: datetime,
) -> dict[str, pa.Table]:
    """The warehouse tables' rows, in their columns' Arrow types."""
    run = pl.lit(run_id).alias("run_id")
    stamp = pl.lit(at.replace(tzinfo=None), dtype=pl.Datetime("us"))
    frames = {
        "priced_claims": priced_claims.select(
            "claim_id",
            "batch_id",
            run,
            "billing_npi",
            "mac",
            "locality",
            "place_of_service",
            "line_count",
            _scaled("total_charge_cents", 2).alias("total_charge"),
            _scaled("total_allowed_cents", 2).alias("total_allowed"),
            stamp.alias("priced_at"),
        ),
        "priced_claim_lines": priced_lines.select(
            "claim_id",
            "line_number",
            "procedure_code",
            pl.when(pl.col("modifier_1").str.strip_chars() != "").then(pl.col("modifier_1")).alias("modifier_1"),
            "units",
            _scaled("charge_cents", 2).alias("charge"),
            "facility",
            _scaled("fee_schedule_cents", 2).alias("fee_schedule_amount"),
            _scaled("adjustment_factor_e5", 5).alias("adjustment_factor"),
            _scaled("allowed_cents", 2).alias("allowed_amount"),
            "pricing_note",
            run,
            "rvu_release",
            "cf_kind",
        ),
        "rejected_claims": rejected.select("claim_id", "batch_id", run, "rule_ids", stamp.alias("rejected_at")),
        "claim_warnings": warnings.select("claim_id", "rule_id", run),
    }
    return {
        name: frame.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(WAREHOUSE[name])
        for name, frame in frames.items()
        if frame.height
    }


def run(source_url: str, target_url: str, settings: Settings | None = None) -> dict[str, float]:
    """The job once: seconds of each step (reference, read, validate, price, load, mark) and their
    total (from its start, after the imports, as a run's own seconds are)."""
    settings = settings or Settings(source_url=source_url, target_url=target_url)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step], clock = now - clock, now

    reference = read_frames(settings)
    lap("reference")
    claims, lines = read(source_url)
    lap("read")
    checked = validate(claims, lines, reference, run_date=settings.effective_run_date(), rules=settings.rules().config)
    del claims, lines
    lap("validate")
    priced = price_keyed(checked.accepted_claims, checked.accepted_keyed_lines, reference)
    lap("price")
    run_id, at = f"peer-{uuid.uuid4()}", datetime.now(UTC)
    tables = warehouse_tables(priced.claims, priced.lines, checked.rejected, checked.warnings, run_id, at)
    with adbc.connect(target_url) as target, target.cursor() as cursor:
        for name, table in tables.items():
            cursor.adbc_ingest(name, table, mode="append", db_schema_name="warehouse")
        target.commit()
    lap("load")
    marks = pl.concat(
        [
            checked.rejected.select("claim_id", pl.lit("rejected").alias("status")),
            priced.claims.select("claim_id", pl.lit("processed").alias("status")),
        ]
    ).to_arrow(compat_level=pl.CompatLevel.oldest())
    with adbc.connect(source_url) as source, source.cursor() as cursor:
        cursor.adbc_ingest("peer_marks", marks, mode="create", temporary=True)
        cursor.execute(MARK_SQL.format(run_id=run_id, at=at.isoformat()))
        source.commit()
    lap("mark")
    seconds["total"] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-url", required=True, help="the staging database (postgresql://...)")
    parser.add_argument("--target-url", required=True, help="the PostgreSQL warehouse (postgresql://...)")
    args = parser.parse_args()
    seconds: dict[str, Any] = run(args.source_url, args.target_url)
    # ru_maxrss is KiB on Linux: the process's peak, as the engine's summary reports its own
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak}, indent=2))


if __name__ == "__main__":
    main()
