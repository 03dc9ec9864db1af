"""A run's start-up (engine/start_up.py): the leases are taken in a thread while the run imports and
opens the warehouse, and commit only when its first stage begins. A run that ends before that leases
nothing; a warehouse slower than the lease lock may be held is waited for without the lock."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

import claims_etl as ce
from claims_etl.db import sql
from claims_etl.engine import leases, start_up
from claims_etl.errors import ClaimsEtlError
from claims_etl.ops import run_records
from tests.db import SOURCE_URL
from tests.seeding import seeded_fixture

SEEDED = 200

seeded = seeded_fixture(SEEDED, seed=31, invalid_rate=0.1, on="pg_settings")


def _source(statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(SOURCE_URL) as connection:
        return connection.execute(statement).fetchall()


def _statuses() -> dict[str, int]:
    return dict(_source("SELECT status, count(*) FROM staging.claims GROUP BY 1"))


def test_a_run_that_cannot_reach_the_warehouse_leases_nothing(seeded: ce.Settings) -> None:
    unreachable = SecretStr("Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=x;Uid=postgres;")
    with pytest.raises(ClaimsEtlError, match="cannot reach the warehouse"):
        ce.run(seeded.model_copy(update={"target_odbc": unreachable, "target_url": None}))
    assert _source("SELECT count(*) FROM staging.range_leases") == [(0,)]
    assert _statuses() == {"pending": SEEDED}
    # its start-up published progress before the warehouse failed: the run log says failed, not running
    # (which the next run would take for a killed run)
    newest = "SELECT status, summary->>'outcome' FROM staging.etl_run_log ORDER BY started_at DESC LIMIT 1"
    assert _source(newest) == [("failed", "failed")]


def test_a_warehouse_slower_than_the_lease_hold_is_waited_for_without_the_lease_lock(
    seeded: ce.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The go comes after the hold: the lease rolls back (the lock released: another session takes it
    meanwhile), is taken again once the go comes, and the run loads every claim once."""
    record_start = run_records.record_start
    taken: list[bool] = []
    lock_free_while_waiting: list[bool] = []
    take = leases.take

    def slow_record_start(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.5)  # well past the hold: the first lease transaction has rolled back by now
        with psycopg.connect(SOURCE_URL) as other:  # another run's lease lock: free, not held by this run
            other.execute("SET lock_timeout = '2s'")
            other.execute(sql.load("leases/lease_lock"))
            lock_free_while_waiting.append(True)
        record_start(*args, **kwargs)

    def counted_take(*args: Any, **kwargs: Any) -> leases.Leased:
        taken.append(True)
        return take(*args, **kwargs)

    monkeypatch.setattr(start_up, "LEASE_HOLD_SECONDS", 0.05)
    monkeypatch.setattr(run_records, "record_start", slow_record_start)
    monkeypatch.setattr(leases, "take", counted_take)
    result = ce.run(seeded)
    assert (result.status, result.claims_read) == ("succeeded", SEEDED)
    assert (len(taken), lock_free_while_waiting) == (2, [True])
    assert "pending" not in _statuses() and sum(_statuses().values()) == SEEDED
    assert _source("SELECT count(*) FROM staging.range_leases") == [(0,)]
