"""Range leases (docs/design.md, Range leases): the interleavings a claim_id interval lease adds to the
per-claim one, each checked by the same exactly-once and reconcile checks as the crash trials.

- a producer's claims committed late with ids inside a leased interval, before the range's read
  (loaded by the run) or after it (left pending, loaded by the next run), and inside a dead run's
  interval (loaded by the run that takes it over);
- concurrent runs of different batches whose claims interleave in claim_id order: disjoint, each loads
  only its batch;
- randomized trials mixing crashes, late claims and batch filters (slow).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from claims_etl.settings import Settings
from tests import db
from tests.db import SOURCE_URL, read_source
from tests.helpers import CLAIMS, Reader, assert_exactly_once_and_exact, assert_reconciled, cli_env, run_cli
from tests.seeding import seeded_fixture

POINTS = ["after_lease", "after_extract", "during_write", "after_commit", "during_mark", "after_mark"]
HELD_EVERY = 37  # every 37th claim is held back by the producer: late ids spread over every range


seeded = seeded_fixture(CLAIMS, seed=31, invalid_rate=0.1)


def hold_back(every: int = HELD_EVERY, offset: int = 1) -> list[int]:
    """Take claims (every `every`-th claim_id from the lowest + `offset`) and their lines out of the
    source into side tables, as if their producer had not committed yet; returns their ids."""
    with psycopg.connect(SOURCE_URL) as connection:
        connection.execute("DROP TABLE IF EXISTS public.held_claims, public.held_lines")
        connection.execute(
            "CREATE TABLE public.held_claims AS SELECT * FROM staging.claims "
            "WHERE (claim_id - (SELECT min(claim_id) FROM staging.claims)) %% %s = %s",
            [every, offset],
        )
        connection.execute(
            "CREATE TABLE public.held_lines AS SELECT l.* FROM staging.claim_lines AS l "
            "JOIN public.held_claims USING (claim_id)"
        )
        connection.execute(
            "DELETE FROM staging.claim_lines WHERE claim_id IN (SELECT claim_id FROM public.held_claims)"
        )
        connection.execute("DELETE FROM staging.claims WHERE claim_id IN (SELECT claim_id FROM public.held_claims)")
        held = connection.execute("SELECT claim_id FROM public.held_claims ORDER BY claim_id").fetchall()
    return [claim_id for (claim_id,) in held]


def commit_held() -> None:
    """The producer commits the held claims and their lines, in one transaction (docs/spec.md §1)."""
    with psycopg.connect(SOURCE_URL) as connection:
        connection.execute("INSERT INTO staging.claims SELECT * FROM public.held_claims")
        connection.execute("INSERT INTO staging.claim_lines SELECT * FROM public.held_lines")
        connection.execute("DROP TABLE public.held_claims, public.held_lines")


def run_paused(settings: Settings, point: str, tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    """A `claims-etl run` that pauses at `point` (once); returns when it is paused there."""
    paused = tmp_path / f"paused-{point}"
    env = cli_env(
        settings, CLAIMS_ETL_FAULT=point, CLAIMS_ETL_FAULT_PAUSE="6", CLAIMS_ETL_FAULT_ONCE_FILE=str(paused), **extra
    )
    return db.start_paused_run(env, paused)


def finish(run: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    summary: dict[str, Any] = json.loads(out)
    return summary


def loaded_by(run_id: str, read_target: Reader) -> set[int]:
    """The claims `run_id` wrote to the warehouse, priced or rejected."""
    priced = read_target(f"SELECT claim_id FROM warehouse.priced_claims WHERE run_id = '{run_id}'")
    rejected = read_target(f"SELECT claim_id FROM warehouse.rejected_claims WHERE run_id = '{run_id}'")
    return set(priced.get_column("claim_id").to_list()) | set(rejected.get_column("claim_id").to_list())


def _inside(claims: list[int], intervals: list[tuple[int, int]]) -> set[int]:
    return {claim for claim in claims if any(low <= claim <= high for low, high in intervals)}


def _rest_loaded_by_a_next_run(settings: Settings, read_target: Reader, expected: set[int]) -> None:
    """A next run loads exactly the claims `expected` left pending, then every claim is exactly once."""
    pending = set(read_source("SELECT claim_id FROM staging.claims WHERE status = 'pending'").get_column("claim_id"))
    assert pending == expected  # never marked by a run that did not load them
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0
    second = db.run_cli(cli_env(settings))
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["claims_read"] == len(expected)
    assert loaded_by(summary["run_id"], read_target) == expected
    assert_exactly_once_and_exact(settings, read_target)
    assert_reconciled(settings)


def test_claims_committed_inside_leased_intervals_before_the_read_are_loaded_by_the_run(
    seeded: Settings, read_target: Reader, tmp_path: Path
) -> None:
    """Late claims inside the run's intervals are read with them; those between two intervals (no
    range holds them) stay pending for the next run."""
    held = hold_back()
    run = run_paused(seeded, "pause_after_lease", tmp_path, CLAIMS_ETL_RANGE_CLAIMS="400")
    intervals = read_source("SELECT low, high FROM staging.range_leases ORDER BY low").rows()
    inside = _inside(held, intervals)
    assert len(intervals) == 4 and len(inside) >= len(held) - 3
    commit_held()  # inside the run's intervals, before any range is read
    summary = finish(run)
    assert summary["claims_read"] == CLAIMS - len(held) + len(inside)
    _rest_loaded_by_a_next_run(seeded, read_target, set(held) - inside)


def test_claims_committed_inside_a_range_after_its_read_wait_pending_for_the_next_run(
    seeded: Settings, read_target: Reader, tmp_path: Path
) -> None:
    held = hold_back()
    run = run_paused(seeded, "pause_after_read", tmp_path, CLAIMS_ETL_RANGE_CLAIMS="400")
    intervals = read_source("SELECT low, high FROM staging.range_leases ORDER BY low").rows()
    commit_held()  # the first range is read already; the later ranges are not
    first = finish(run)
    late_in_first, read_later = _inside(held, intervals[:1]), _inside(held, intervals[1:])
    assert late_in_first and first["claims_read"] == CLAIMS - len(held) + len(read_later)
    _rest_loaded_by_a_next_run(seeded, read_target, set(held) - read_later)


@pytest.mark.parametrize("fault", ["after_lease", "after_commit:2", "during_mark:3"])
def test_claims_committed_inside_a_dead_runs_intervals_are_loaded_by_the_run_that_takes_them_over(
    seeded: Settings, read_target: Reader, fault: str
) -> None:
    hold_back()
    assert run_cli(seeded, fault).returncode == -signal.SIGKILL
    assert read_source("SELECT count(*) FROM staging.range_leases").item() > 0
    commit_held()
    repaired = run_cli(seeded)
    assert repaired.returncode == 0, repaired.stderr
    summary = json.loads(repaired.stdout)
    assert summary["claims_recovered"] > 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


def _interleave_batches() -> None:
    """Two batches alternating claim by claim: any interval of one holds claims of the other."""
    with psycopg.connect(SOURCE_URL) as connection:
        connection.execute("UPDATE staging.claims SET batch_id = CASE WHEN claim_id % 2 = 0 THEN 'even' ELSE 'odd' END")


def test_runs_of_interleaved_batches_at_once_stay_disjoint_and_load_only_their_batch(
    seeded: Settings, read_target: Reader
) -> None:
    _interleave_batches()
    command = [sys.executable, "-m", "claims_etl", "run", "--json"]

    def start(batch: str) -> subprocess.Popen[str]:
        env = cli_env(seeded, CLAIMS_ETL_BATCH_ID=batch, CLAIMS_ETL_RANGE_CLAIMS="200")
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    runs = {batch: start(batch) for batch in ("even", "odd")}
    summaries = {batch: finish(run) for batch, run in runs.items()}
    for batch, summary in summaries.items():
        loaded = loaded_by(summary["run_id"], read_target)
        assert len(loaded) == summary["claims_read"]
        assert all(claim % 2 == (batch == "odd") for claim in loaded), f"{batch} loaded another batch's claims"
    rest = db.run_cli(cli_env(seeded))  # what a busy interval of the other batch kept waiting
    assert rest.returncode == 0, rest.stderr
    read = sum(summary["claims_read"] for summary in summaries.values()) + json.loads(rest.stdout)["claims_read"]
    assert read == CLAIMS
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(12))
def test_randomized_range_lease_trials(seeded: Settings, read_target: Reader, trial: int) -> None:
    """A crash at a random point of a run of one batch (or of all), the producer's late claims
    committed after it inside the dead run's intervals, a second crash at random, then runs until
    nothing is pending: every claim exactly once."""
    rng = random.Random(7_000 + trial)
    if rng.random() < 0.5:
        _interleave_batches()
    hold_back(every=rng.choice([13, 37, 101]), offset=rng.randrange(5))
    batch = rng.choice([None, "even", "odd"])
    for crash in range(rng.choice([1, 2])):
        point = rng.choice(
            ["after_lease", "after_extract", "during_write", "after_commit", "during_mark", "after_mark"]
        )
        fault = f"{point}:{rng.randint(1, 4)}" if point not in ("after_lease", "after_extract") else point
        extra = {"CLAIMS_ETL_RANGE_CLAIMS": str(rng.choice([300, 1200]))}
        if batch and crash == 0:
            extra["CLAIMS_ETL_BATCH_ID"] = batch
        crashed = db.run_cli(cli_env(seeded, CLAIMS_ETL_FAULT=fault, **extra))
        assert crashed.returncode in (-signal.SIGKILL, 0), crashed.stderr  # a late chunk number may not exist
        if crash == 0:
            commit_held()
    for _ in range(2):  # a batch's waiting claims need the second
        assert run_cli(seeded).returncode == 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)
