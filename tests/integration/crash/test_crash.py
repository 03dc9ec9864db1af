"""Exactly once under crashes: `claims-etl run` really SIGKILLs itself at an injected point
(claims_etl/dev/fault_hooks.py), a plain rerun repairs, and the warehouse and the source are checked row by
row against a run that never crashed (the pure stages on the same source rows). After every repair
`claims-etl reconcile` finds no difference; after a crash between a chunk's commit and its mark, it
finds the claims in the warehouse that are still pending."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys

import pytest

from claims_etl.settings import Settings
from tests import db
from tests.db import read_source
from tests.helpers import (
    CHUNK,
    CLAIMS,
    Reader,
    assert_exactly_once_and_exact,
    assert_reconciled,
    cli_env,
    reconcile,
    run_cli,
)
from tests.seeding import seeded_fixture

POINTS = [
    "after_lease", "after_extract", "after_validate", "after_price", "during_write:1", "after_commit:1",
    "during_mark:2", "after_mark:3", "during_write:5", "after_commit:5",
]  # fmt: skip


seeded = seeded_fixture(CLAIMS, seed=31, invalid_rate=0.1)


@pytest.mark.parametrize("fault", POINTS)
def test_sigkill_at_each_point_then_rerun_is_exactly_once(seeded: Settings, read_target: Reader, fault: str) -> None:
    crashed = run_cli(seeded, fault)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    if fault.startswith(("after_commit", "during_mark")):  # committed in the warehouse, still pending
        code, report = reconcile(seeded)
        found = {d["check"]: d["count"] for d in report["differences"] if d["count"]}
        assert code == 1 and set(found) == {"pending_in_warehouse_not_in_flight"}, report
        # the chunk committed and not marked, and the one before it if its marking (which overlaps the
        # next chunk's write) had not committed yet
        assert 0 < found["pending_in_warehouse_not_in_flight"] <= 2 * CHUNK
    repaired = run_cli(seeded)
    assert repaired.returncode == 0, repaired.stderr
    summary = json.loads(repaired.stdout)
    assert summary["status"] == "succeeded"
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.parametrize("fault", ["during_write:2", "after_commit:3"])
def test_sigkill_in_a_writer_process_then_rerun_is_exactly_once(
    seeded: Settings, read_target: Reader, fault: str
) -> None:
    """With two writer processes, `during_write` fires inside a writer: it kills the run, and no
    writer outlives the run (one that did would hold the run's stdout open, and run_cli would time
    out). The rerun, with two writers too, repairs: its recovering chunks are written alone."""
    crashed = run_cli(seeded, fault, load_connections=2)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    repaired = run_cli(seeded, load_connections=2)
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["claims_recovered"] > 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.parametrize(
    ("fault", "marked_before"),
    [("during_write:2", 100), ("after_commit:3", 100), ("during_mark:5", 500), ("after_commit:9", 900)],
)
def test_sigkill_in_a_later_range_then_rerun_is_exactly_once(
    seeded: Settings, read_target: Reader, fault: str, marked_before: int
) -> None:
    """A run of several ranges, the first a quarter-size one: 100, 400, 400 and 300 claims, in
    chunks 1 | 2 3 4 | 5 6 7 | 8 9 (numbered across the run; each range's last chunk is a quarter
    one). A crash in a later range comes after the earlier ranges were written and marked; the rerun
    repairs the rest exactly once."""
    ranges = {"CLAIMS_ETL_RANGE_CLAIMS": "400"}
    crashed = db.run_cli(cli_env(seeded, CLAIMS_ETL_FAULT=fault, **ranges))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    marked = read_source("SELECT count(*) FROM staging.claims WHERE status <> 'pending'").item()
    assert marked >= marked_before
    repaired = db.run_cli(cli_env(seeded, **ranges))
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["claims_read"] == CLAIMS - marked  # the rest, and only the rest
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(24))
def test_randomized_crash_trials(seeded: Settings, read_target: Reader, trial: int) -> None:
    """Random points and chunk numbers, sometimes two crashes in a row before the repair; each run
    writes on its own session or from two writer processes, at random."""
    rng, writers = random.Random(trial), random.Random(1_000 + trial)  # the faults drawn as before
    for _ in range(rng.choice([1, 1, 2])):
        point = rng.choice(
            ["after_lease", "after_extract", "after_price", "during_write", "after_commit", "during_mark"]
        )
        fault = f"{point}:{rng.randint(1, 5)}" if point in ("during_write", "after_commit", "during_mark") else point
        assert run_cli(seeded, fault, writers.choice([1, 2])).returncode == -signal.SIGKILL
    assert run_cli(seeded, load_connections=writers.choice([1, 2])).returncode == 0
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)


def test_two_runs_started_together_share_the_work(seeded: Settings, read_target: Reader) -> None:
    env = cli_env(seeded, CLAIMS_ETL_LIMIT="700")
    command = [sys.executable, "-m", "claims_etl", "run", "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [err for _, err in outputs]
    read = [json.loads(out)["claims_read"] for out, _ in outputs]
    assert sum(read) == CLAIMS and max(read) == 700  # disjoint: one got its 700, the other the rest
    assert_exactly_once_and_exact(seeded, read_target)
    assert_reconciled(seeded)
