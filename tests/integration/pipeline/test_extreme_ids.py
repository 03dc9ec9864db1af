"""The whole bigint domain of claim_id (issue 29 item 2): claims with ids at both ends of it, -2^63 and
2^63 - 1 and their neighbours, among ordinary ones, are each loaded exactly once whatever the range
sizes and the partitions that read a range; a rerun reads nothing; `seed` refuses to go past the top id.
The crash recovery of a range touching 2^63 - 1 is in tests/integration/crash/test_extreme_id_crash.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from claims_etl.db.source import init_source
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests import db
from tests.db import SOURCE_URL, read_source
from tests.helpers import Reader, assert_exactly_once_and_exact, assert_reconciled

CLAIMS = 120
BOTTOM, TOP = -(2**63), 2**63 - 1
# seeded claim_id -> its new id: both ends of the domain and their neighbours, at the two ends of the
# seeded ids so that the first and the last ranges hold them.
EXTREMES = {1: BOTTOM, 2: BOTTOM + 1, CLAIMS - 1: TOP - 1, CLAIMS: TOP}


def move_claims(moves: dict[int, int]) -> None:
    """Give claims (and their lines) new claim_ids, in one producer transaction."""
    with psycopg.connect(SOURCE_URL) as connection:
        connection.execute("CREATE TEMP TABLE moves (old bigint PRIMARY KEY, new bigint NOT NULL)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO moves VALUES (%s, %s)", list(moves.items()))
        connection.execute(
            "CREATE TEMP TABLE moved AS SELECT c.* FROM staging.claims AS c JOIN moves ON moves.old = c.claim_id"
        )
        connection.execute("UPDATE moved SET claim_id = moves.new FROM moves WHERE moves.old = moved.claim_id")
        connection.execute("INSERT INTO staging.claims SELECT * FROM moved")
        connection.execute(
            "UPDATE staging.claim_lines AS l SET claim_id = moves.new FROM moves WHERE moves.old = l.claim_id"
        )
        connection.execute("DELETE FROM staging.claims WHERE claim_id IN (SELECT old FROM moves)")


@pytest.fixture
def extreme(settings: Settings, tmp_path: Path) -> Settings:
    """CLAIMS pending claims, four of them at the ends of the bigint domain."""
    seed(settings, CLAIMS, seed=29, invalid_rate=0.1, directory=tmp_path)
    move_claims(EXTREMES)
    return settings


def run(settings: Settings, **extra: str) -> dict[str, object]:
    result = db.run_cli(db.cli_env(settings, **extra))
    assert result.returncode == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("partitions", [None, 1, 4], ids=["default-partitions", "1-partition", "4-partitions"])
@pytest.mark.parametrize("range_claims", [40, 100_000], ids=["several-ranges", "one-range"])
def test_claims_at_both_ends_of_bigint_are_loaded_exactly_once(
    extreme: Settings, read_target: Reader, partitions: int | None, range_claims: int
) -> None:
    """Ranges of 10, 40, 40 and 30 claims (the first and last holding the extreme ids), or one range
    from -2^63 to 2^63 - 1: every claim read once, nothing left pending or leased, reconcile clean."""
    extra = {"CLAIMS_ETL_RANGE_CLAIMS": str(range_claims)}
    if partitions is not None:
        extra["CLAIMS_ETL_PARTITIONS"] = str(partitions)
    first = run(extreme, **extra)
    assert (first["status"], first["claims_read"]) == ("succeeded", CLAIMS)
    assert read_source("SELECT count(*) FROM staging.claims WHERE status = 'pending'").item() == 0
    assert_exactly_once_and_exact(extreme, read_target, claims=CLAIMS)
    assert_reconciled(extreme, claims=CLAIMS)
    again = run(extreme, **extra)
    assert (again["status"], again["claims_read"]) == ("succeeded", 0)


def test_seed_refuses_past_the_largest_claim_id(pg_settings: Settings, tmp_path: Path) -> None:
    """Seeded claims continue after the largest claim_id; above 2^63 - 1 there is no room: one line, exit
    2, nothing added. Below it, the ids fit exactly up to the top."""
    seed(pg_settings, 3, directory=tmp_path)
    move_claims({3: TOP - 2})
    fits = seed(pg_settings, 2, directory=tmp_path)
    assert fits.first_claim_id == TOP - 1
    assert read_source("SELECT max(claim_id) FROM staging.claims").item() == TOP
    result = subprocess.run(
        [sys.executable, "-m", "claims_etl", "seed", "--claims", "1"],
        env=db.cli_env(pg_settings), capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    no_room = f"no room for 1 more claims after the largest claim_id, {TOP}: a claim_id is a bigint, at most {TOP}"
    assert result.stderr.strip().splitlines() == [f"error: seed: {no_room}"]
    assert read_source("SELECT count(*) FROM staging.claims").item() == 5


def test_a_range_from_the_bottom_id_to_just_below_the_top_is_read_whole(
    settings: Settings, read_target: Reader, tmp_path: Path
) -> None:
    """The issue's case: one range holding -2^63 and 2^63 - 2 read with the default partitions (its
    width overflows int64 partitioning arithmetic: it read nothing and left every claim pending)."""
    seed(settings, CLAIMS, seed=29, invalid_rate=0.1, directory=tmp_path)
    move_claims({1: BOTTOM, CLAIMS: TOP - 1})
    first = run(settings)
    assert (first["status"], first["claims_read"]) == ("succeeded", CLAIMS)
    assert_exactly_once_and_exact(settings, read_target, claims=CLAIMS)
    assert_reconciled(settings, claims=CLAIMS)


def test_db_init_migrates_the_int8range_exclusion_constraint(pg_settings: Settings) -> None:
    """A database from before issue 29 keeps its leases disjoint by int8range(low, high, '[]'), which
    cannot hold 2^63 - 1: `db init` replaces it with the numrange one, and a lease up to the top id fits."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("ALTER TABLE staging.range_leases DROP CONSTRAINT range_leases_disjoint")
        connection.execute(
            "ALTER TABLE staging.range_leases ADD CONSTRAINT range_leases_disjoint "
            "EXCLUDE USING gist (int8range(low, high, '[]') WITH &&)"
        )
    init_source(pg_settings)
    definition = read_source(
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = 'range_leases_disjoint'"
    )
    assert definition.rows() == [
        ("EXCLUDE USING gist (numrange((low)::numeric, (high)::numeric, '[]'::text) WITH &&)",)
    ]
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO staging.range_leases (run_id, low, high, claims) VALUES ('r', %s, %s, 1)", [TOP - 1, TOP]
        )
        with pytest.raises(psycopg.errors.ExclusionViolation):
            connection.execute(
                "INSERT INTO staging.range_leases (run_id, low, high, claims) VALUES ('s', %s, %s, 1)", [TOP, TOP]
            )


def test_db_init_leaves_a_current_lease_constraint_alone(pg_settings: Settings) -> None:
    """Rebuilding the constraint locks the lease table that live runs use: `db init` on a database whose
    constraint is already the numrange one keeps it (same object), and live leases are not blocked."""
    constraint = "SELECT oid::bigint AS oid FROM pg_constraint WHERE conname = 'range_leases_disjoint'"
    before = read_source(constraint).item()
    with psycopg.connect(SOURCE_URL) as live_run:  # a run holding its lease rows, mid-transaction
        live_run.execute("INSERT INTO staging.range_leases (run_id, low, high, claims) VALUES ('live', 1, 9, 1)")
        init_source(pg_settings.model_copy(update={"source_lock_timeout_seconds": 2}))
        live_run.rollback()
    assert read_source(constraint).item() == before
