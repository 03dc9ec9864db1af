"""The benchmark's plain peer (benchmarks/peers/polars_adbc.py) does the engine's job: on the same seeded
claims into a PostgreSQL warehouse by URL it leaves the same warehouse rows and source statuses as a run
(run ids and time stamps apart), as benchmarks/bench.py checks on every repeat; and the check itself
finds a difference."""

from __future__ import annotations

import psycopg
import pytest

import claims_etl
from benchmarks.peers import outputs, polars_adbc
from claims_etl.settings import Settings
from claims_etl.stages.load import WAREHOUSE_TABLES
from tests.db import SOURCE_URL
from tests.seeding import seeded_fixture

seeded = seeded_fixture(2_000, seed=32, invalid_rate=0.1)
pytestmark = pytest.mark.parametrize("target_name", ["postgresql-copy"], indirect=True)


def _back_to_pending() -> None:
    """The source as seeded again (every claim pending), the warehouse tables emptied."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET status = 'pending', run_id = NULL, processed_at = NULL")
        connection.execute("TRUNCATE " + ", ".join(f"warehouse.{table}" for table in WAREHOUSE_TABLES))


def test_peer_leaves_what_a_run_leaves(seeded: Settings) -> None:
    result = claims_etl.run(seeded)
    assert result.claims_rejected > 0  # invalid claims too: rejected_claims is compared, not only empty
    engine = outputs.snapshot(SOURCE_URL)
    _back_to_pending()

    steps = polars_adbc.run(SOURCE_URL, SOURCE_URL, settings=seeded)
    peer = outputs.snapshot(SOURCE_URL)

    assert set(steps) == {"reference", "read", "validate", "price", "load", "mark", "total"}
    assert outputs.differences(engine, peer) == []
    assert peer["statuses"].get_column("status").value_counts().height == 2  # processed and rejected
    changed = peer | {
        "priced_claims": peer["priced_claims"].with_columns(total_allowed=peer["priced_claims"]["total_charge"])
    }
    assert [line.split(":")[0] for line in outputs.differences(engine, changed)] == ["priced_claims"]
