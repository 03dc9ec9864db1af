"""Exactly once against zombies and foreign rows (issue 19 items 2 and 3).

- A run whose lock session died while its process lives (a zombie) is fenced: the run that took its
  leases over fences it in etl_runs before writing, and the zombie's next chunk finds that inside its
  own warehouse transaction and rolls back, so a claim the two classify differently never ends in both
  priced_claims and rejected_claims.
- Recovery deletes only the rows of the runs the leases were taken from, and a claim_id already in the
  warehouse from another run (reset to pending by hand) is quarantined with its reason, never loaded
  twice, overwritten or deleted.
"""

from __future__ import annotations

import subprocess
import time
from decimal import Decimal

import polars as pl
import psycopg
import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests import db
from tests.db import FAULTY_CLI, PG_ADMIN_URL, TEST_DB, read_source
from tests.helpers import CLAIMS, Reader, assert_reconciled, cli_env, run_cli
from tests.seeding import seeded_fixture

EARLY_RUN_DATE = "2000-01-01"  # before every seeded service date: V09 rejects every claim


def _warehouse_ids(read_target: Reader) -> tuple[pl.Series, pl.Series]:
    priced = read_target("SELECT claim_id FROM warehouse.priced_claims").get_column("claim_id").cast(pl.Int64)
    rejected = read_target("SELECT claim_id FROM warehouse.rejected_claims").get_column("claim_id").cast(pl.Int64)
    return priced, rejected


def _assert_each_claim_once_and_statuses_agree(read_target: Reader, quarantined: tuple[int, ...] = ()) -> None:
    priced, rejected = _warehouse_ids(read_target)
    both = set(priced.to_list()) & set(rejected.to_list())
    assert not both, f"{len(both)} claims in both priced_claims and rejected_claims"
    ids = pl.concat([priced, rejected])
    assert ids.len() == ids.n_unique() == CLAIMS
    statuses = read_source("SELECT claim_id, status FROM staging.claims")
    want = pl.concat(
        [
            pl.DataFrame({"claim_id": priced, "want": "processed"}),
            pl.DataFrame({"claim_id": rejected, "want": "rejected"}),
        ]
    ).with_columns(
        pl.when(pl.col("claim_id").is_in(list(quarantined))).then(pl.lit("quarantined")).otherwise("want").alias("want")
    )
    joined = statuses.with_columns(pl.col("claim_id").cast(pl.Int64)).join(want, on="claim_id", how="full")
    assert joined.filter(pl.col("status") != pl.col("want")).height == 0
    assert joined.filter(pl.col("status").is_null() | pl.col("want").is_null()).height == 0
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0


def _lock_sessions() -> list[int]:
    """The sessions holding a run lock (a shared advisory lock) on the test database."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT DISTINCT a.pid FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.mode = 'ShareLock' AND l.granted AND a.datname = %s "
            "AND a.application_name = 'claims-etl'",
            [TEST_DB],
        ).fetchall()
    return [int(row[0]) for row in rows]


@pytest.fixture
def all_valid(settings: Settings, tmp_path: object) -> Settings:
    """Claims every rule passes at the pinned run date, so a run with EARLY_RUN_DATE rejects every one
    the first run prices: the two runs never write a claim to the same table."""
    seed(settings, CLAIMS, seed=31, invalid_rate=0.0, directory=tmp_path)  # type: ignore[arg-type]
    return settings


def test_a_zombie_run_is_fenced_and_never_commits_after_a_takeover(all_valid: Settings, read_target: Reader) -> None:
    zombie = subprocess.Popen(
        [*FAULTY_CLI, "run"],
        env=cli_env(all_valid, CLAIMS_ETL_FAULT="pause_before_write:2", CLAIMS_ETL_FAULT_PAUSE="20"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while read_source("SELECT count(*) FROM staging.claims WHERE status <> 'pending'").item() == 0:
            assert zombie.poll() is None and time.monotonic() < deadline, "the run never marked its first chunk"
            time.sleep(0.2)
        time.sleep(0.5)  # now in the pause before chunk 2
        sessions = _lock_sessions()
        assert len(sessions) == 1, sessions  # the local engine's one run-lock session
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [sessions[0]])
        # Another run, another "today": it takes the zombie's leases over and rejects every claim left.
        other = db.run_cli(cli_env(all_valid, CLAIMS_ETL_RUN_DATE=EARLY_RUN_DATE))
        assert other.returncode == 0, other.stderr
        assert zombie.poll() is None, "the zombie resumed before the other run finished: lengthen its pause"
        _, stderr = zombie.communicate(timeout=120)
    finally:
        if zombie.poll() is None:
            zombie.kill()
    assert zombie.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    _assert_each_claim_once_and_statuses_agree(read_target)
    priced, rejected = _warehouse_ids(read_target)
    assert priced.len() > 0 and rejected.len() > 0  # both runs wrote: the test exercised a disagreement
    assert_reconciled(all_valid)


seeded = seeded_fixture(CLAIMS, seed=31, invalid_rate=0.1)


def _reset_a_priced_claim_by_hand(read_target: Reader) -> tuple[int, str, Decimal]:
    """A processed claim set back to pending with one more dollar on its first line (and total), as an
    operator's fix-up or a producer reusing the claim_id would: returns it, its run and its old charge."""
    row = read_target("SELECT claim_id, run_id, total_charge FROM warehouse.priced_claims ORDER BY claim_id").row(
        600
    )  # in a middle chunk
    claim_id, run_id, charge = int(row[0]), str(row[1]), Decimal(str(row[2]))
    with psycopg.connect(db.SOURCE_URL, autocommit=True) as source:
        source.execute(
            "UPDATE staging.claims SET status = 'pending', run_id = NULL, processed_at = NULL, "
            "total_charge = total_charge + 1 WHERE claim_id = %s",
            [claim_id],
        )
        source.execute(
            "UPDATE staging.claim_lines SET charge = charge + 1 WHERE claim_id = %s AND line_number = 1", [claim_id]
        )
    return claim_id, run_id, charge


def _assert_kept_and_quarantined(read_target: Reader, claim_id: int, run_id: str, charge: Decimal) -> None:
    kept = read_target(f"SELECT run_id, total_charge FROM warehouse.priced_claims WHERE claim_id = {claim_id}")
    assert kept.height == 1 and kept.item(0, "run_id") == run_id  # the first run's row, not deleted or replaced
    assert Decimal(str(kept.item(0, "total_charge"))) == charge
    assert read_target(f"SELECT count(*) AS n FROM warehouse.rejected_claims WHERE claim_id = {claim_id}").item() == 0
    source = read_source(f"SELECT status FROM staging.claims WHERE claim_id = {claim_id}")
    assert source.item() == "quarantined"
    reasons = read_source(f"SELECT run_id, reason FROM staging.claim_quarantine WHERE claim_id = {claim_id}")
    assert reasons.height == 1 and reasons.item(0, "run_id") != run_id
    assert "already in the warehouse from another run" in reasons.item(0, "reason")
    _assert_each_claim_once_and_statuses_agree(read_target, quarantined=(claim_id,))


def test_a_claim_reset_by_hand_is_quarantined_not_loaded_twice(seeded: Settings, read_target: Reader) -> None:
    assert run_cli(seeded).returncode == 0
    claim_id, run_id, charge = _reset_a_priced_claim_by_hand(read_target)
    again = run_cli(seeded)
    assert again.returncode == 0, again.stderr
    assert '"claims_quarantined": 1' in again.stdout
    _assert_kept_and_quarantined(read_target, claim_id, run_id, charge)
    third = run_cli(seeded)  # never leased again
    assert third.returncode == 0 and '"claims_read": 0' in third.stdout, third.stderr
    assert read_source(f"SELECT status FROM staging.claims WHERE claim_id = {claim_id}").item() == "quarantined"


@pytest.mark.parametrize("fault", ["after_lease", "after_price"])
def test_recovery_deletes_only_the_dead_runs_rows(seeded: Settings, read_target: Reader, fault: str) -> None:
    assert run_cli(seeded).returncode == 0
    claim_id, run_id, charge = _reset_a_priced_claim_by_hand(read_target)
    assert run_cli(seeded, fault=fault).returncode == -9  # dies holding the claim's lease
    repair = run_cli(seeded)  # recovers it: deletes the dead run's rows only
    assert repair.returncode == 0, repair.stderr
    _assert_kept_and_quarantined(read_target, claim_id, run_id, charge)
