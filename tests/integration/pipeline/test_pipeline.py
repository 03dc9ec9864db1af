"""End to end on the real databases: PostgreSQL source, each ODBC target (psqlODBC, MariaDB), and the
PostgreSQL target by URL (COPY) for the main run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import claims_etl
from claims_etl.db.source import init_source, lock_run, source_connection
from claims_etl.engine import leases, marking
from claims_etl.errors import StageError
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.extract import extract
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.stages.write import write_tables
from claims_etl.synthetic import seed
from claims_etl.targets import connect_target
from tests.db import ALL_TARGET_NAMES, RUN_DATE, read_source
from tests.helpers import Reader, expected_outputs
from tests.seeding import seeded_fixture

CLAIMS = 1_500


seeded = seeded_fixture(CLAIMS, seed=11, invalid_rate=0.1)


def _assert_exactly_once(read_target: Reader) -> None:
    priced = read_target("SELECT claim_id FROM warehouse.priced_claims")
    rejected = read_target("SELECT claim_id FROM warehouse.rejected_claims")
    both = pl.concat([priced, rejected]).get_column("claim_id")
    assert both.len() == CLAIMS and both.n_unique() == CLAIMS
    statuses = read_source("SELECT status, count(*) AS n FROM staging.claims GROUP BY status ORDER BY status")
    assert dict(statuses.iter_rows()) == {"processed": priced.height, "rejected": rejected.height}
    assert read_source("SELECT count(*) AS n FROM staging.range_leases").item() == 0


@pytest.mark.parametrize(
    ("range_claims", "load_connections", "planned"),
    [(100_000, 1, [CLAIMS]), (400, 1, [100, 400, 400, 400, 200]), (400, 2, [100, 400, 400, 400, 200])],
    ids=["one-range", "five-ranges", "five-ranges-two-writer-processes"],
)
@pytest.mark.parametrize("target_name", ALL_TARGET_NAMES, indirect=True)
def test_run_loads_every_claim_once_with_exact_prices(
    seeded: Settings, read_target: Reader, range_claims: int, load_connections: int, planned: list[int]
) -> None:
    chunks = {"load_chunk_claims": 150} if load_connections > 1 else {}  # several chunks in flight at once
    result = claims_etl.run(
        seeded.model_copy(update={"range_claims": range_claims, "load_connections": load_connections} | chunks)
    )
    assert [r["claims"] for r in result.ranges] == planned  # locally the first range is a quarter
    expected_lines, expected_rejected = expected_outputs(seeded)
    assert (result.claims_read, result.claims_rejected) == (CLAIMS, expected_rejected.height)
    _assert_exactly_once(read_target)

    lines = read_target(
        "SELECT claim_id, line_number, CAST(allowed_amount * 100 AS SIGNED) AS allowed_cents, "
        "CAST(fee_schedule_amount * 100 AS SIGNED) AS fee_cents, pricing_note FROM warehouse.priced_claim_lines"
        if "MariaDB" in seeded.target_odbc.get_secret_value()
        else "SELECT claim_id, line_number::int, (allowed_amount * 100)::bigint AS allowed_cents, "
        "(fee_schedule_amount * 100)::bigint AS fee_cents, pricing_note FROM warehouse.priced_claim_lines"
    ).sort("claim_id", "line_number")
    want = expected_lines.select(
        "claim_id",
        "line_number",
        "allowed_cents",
        pl.col("fee_schedule_cents").alias("fee_cents"),
        "pricing_note",
    )
    assert lines.cast(want.schema).equals(want)  # type: ignore[arg-type]

    rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    assert rejected.rows() == expected_rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    seen_rules = set(",".join(rejected.get_column("rule_ids")).split(","))
    assert seen_rules == {f"V{n:02d}" for n in range(1, 16)}

    runs = read_target(
        f"SELECT status, claims_read, claims_priced FROM warehouse.etl_runs WHERE run_id = '{result.run_id}'"
    )
    assert runs.rows() == [("succeeded", CLAIMS, result.claims_priced)]
    stages = read_target(f"SELECT stage FROM warehouse.etl_stage_timings WHERE run_id = '{result.run_id}'")
    assert set(stages.get_column("stage")) == {"lease", "reference", "extract", "validate", "price", "load"}


def test_a_rerun_finds_nothing_and_duplicates_nothing(seeded: Settings, read_target: Reader) -> None:
    claims_etl.run(seeded)
    again = claims_etl.run(seeded)
    assert (again.claims_read, again.claims_priced) == (0, 0)
    _assert_exactly_once(read_target)


def test_crash_between_warehouse_commit_and_status_update_is_repaired(seeded: Settings, read_target: Reader) -> None:
    """A run that committed its warehouse rows and died before marking: the next run recovers its
    leases, deletes what it wrote and loads the claims once."""
    run_id = "crashed-run"
    frames = read_frames(seeded)
    with source_connection(seeded) as source:
        lock_run(source, run_id)
        leases.take(source, seeded.model_copy(update={"limit": 600}), run_id, claims_per_range=600)
        (part,) = leases.plan(source, run_id)
        extracted = extract(seeded, run_id, part.low, part.high)
        validated = validate(extracted.claims, extracted.lines, frames, run_date=RUN_DATE)
        priced = price(validated.accepted_claims, validated.accepted_lines, frames)
        target = connect_target(seeded)
        for chunk in load.chunks(validated.rejected, priced, 250):
            write_tables(target, load.chunk_tables(chunk, run_id, datetime.now(UTC)))
        target.close()
    # the session ended without marking: its advisory lock is free, its leases are stale
    result = claims_etl.run(seeded)
    assert (result.claims_recovered, result.claims_read) == (600, CLAIMS)
    _assert_exactly_once(read_target)


def test_db_init_turns_a_dead_runs_per_claim_leases_into_range_leases_the_next_run_recovers(
    seeded: Settings, read_target: Reader
) -> None:
    """Upgrading over a run of the per-claim-lease version that died after committing chunks: `db init`
    converts its leases (two owners, interleaved: some taken over by a run that died too) into range leases, drops
    the old tables, and the next run recovers and loads every claim once."""
    run_id = "old-version-run"
    frames = read_frames(seeded)
    with source_connection(seeded) as source:
        leases.take(source, seeded.model_copy(update={"limit": 600}), run_id, claims_per_range=600)
        (part,) = leases.plan(source, run_id)
        extracted = extract(seeded, run_id, part.low, part.high)
        validated = validate(extracted.claims, extracted.lines, frames, run_date=RUN_DATE)
        target = connect_target(seeded)
        for chunk in load.chunks(
            validated.rejected, price(validated.accepted_claims, validated.accepted_lines, frames), 250
        ):
            write_tables(target, load.chunk_tables(chunk, run_id, datetime.now(UTC)))
        target.close()
        source.execute(  # the layout before range leases, with this run's claims leased one row each
            "CREATE TABLE staging.claim_leases (claim_id bigint PRIMARY KEY, run_id text NOT NULL, "
            "leased_at timestamptz NOT NULL DEFAULT now(), recovered boolean NOT NULL DEFAULT false, "
            "taken_from text[])"
        )
        source.execute("CREATE TABLE staging.run_ranges (run_id text, low bigint, high bigint, attempts integer)")
        source.execute(
            "INSERT INTO staging.claim_leases (claim_id, run_id, recovered, taken_from) "
            "SELECT claim_id, CASE WHEN claim_id %% 100 = 7 THEN 'other-dead-run' ELSE %s END, "
            "claim_id %% 100 = 7, CASE WHEN claim_id %% 100 = 7 THEN ARRAY[%s] END "
            "FROM staging.claims WHERE claim_id BETWEEN %s AND %s",
            [run_id, run_id, part.low, part.high],
        )
        source.execute("DELETE FROM staging.range_leases")
        source.commit()
    init_source(seeded)
    converted = read_source("SELECT run_id, low, high, claims, recovered FROM staging.range_leases ORDER BY low")
    assert converted.get_column("claims").sum() == 600 and converted.height > 2
    assert set(converted.get_column("run_id")) == {run_id, "other-dead-run"}
    gone = "SELECT to_regclass('staging.claim_leases') IS NULL AND to_regclass('staging.run_ranges') IS NULL"
    assert read_source(gone).item() is True
    result = claims_etl.run(seeded)
    assert (result.claims_recovered, result.claims_read) == (600, CLAIMS)
    _assert_exactly_once(read_target)


def test_batch_and_limit_select_claims(seeded: Settings, read_target: Reader) -> None:
    first = claims_etl.run(seeded.model_copy(update={"limit": 100}))
    assert first.claims_read == 100
    batch = claims_etl.run(seeded.model_copy(update={"batch_id": "seed11-0000"}))
    assert batch.claims_read == CLAIMS - 100
    hostile = claims_etl.run(seeded.model_copy(update={"batch_id": "x' OR '1'='1"}))
    assert hostile.claims_read == 0


def test_marking_checks_every_lease_and_marks_by_id(pg_settings: Settings, tmp_path: Path) -> None:
    """A chunk is marked only while the run holds its range lease: taken over by another run (as
    recovery does to a run that looks dead), the mark rolls back whole. A chunk whose lease is held
    gets exactly its rejected ids rejected and its priced ids processed, and the range's release then
    frees the interval only for its holder."""
    seed(pg_settings, 400, seed=11, invalid_rate=0.2, directory=tmp_path)
    run_id, frames = "slow-run", read_frames(pg_settings)
    with source_connection(pg_settings) as source:
        lock_run(source, run_id)
        leases.take(source, pg_settings, run_id, claims_per_range=400)
        (part,) = leases.plan(source, run_id)
        extracted = extract(pg_settings, run_id, part.low, part.high)
        validated = validate(extracted.claims, extracted.lines, frames, run_date=RUN_DATE)
        priced = price(validated.accepted_claims, validated.accepted_lines, frames)
        whole, taken, *_ = load.chunks(validated.rejected, priced, 150)
        assert marking.mark_chunk(source, whole, run_id, datetime.now(UTC)) == whole.claim_count
        source.execute("UPDATE staging.range_leases SET run_id = 'other-run' WHERE run_id = %s", [run_id])
        source.commit()

        with pytest.raises(StageError, match=f"lost the lease on claims \\[{taken.low}, {taken.high}\\] to another"):
            marking.mark_chunk(source, taken, run_id, datetime.now(UTC))
        with pytest.raises(StageError, match="range 1 lost its lease to another run"):
            leases.release(source, part)

    marked = read_source("SELECT claim_id, status FROM staging.claims WHERE status <> 'pending' ORDER BY claim_id")
    expected = pl.concat(
        [
            whole.rejected.select("claim_id", status=pl.lit("rejected")),
            whole.priced.claims.select("claim_id", status=pl.lit("processed")),
        ]
    ).sort("claim_id")
    assert whole.rejected.height > 0
    assert marked.equals(expected)
    held = read_source("SELECT run_id, low, high, claims FROM staging.range_leases")
    assert held.rows() == [("other-run", part.low, part.high, 400)]
