"""A range's lease check (claims_etl/engine/range_work.py), which keeps a retried Dask range from skipping
claims; the Dask engine on a real cluster and databases is in tests/integration/test_distributed.py."""

from __future__ import annotations

import pytest

from claims_etl.engine.planning import ClaimRange
from claims_etl.engine.range_work import expect_leases
from claims_etl.errors import StageError


def test_a_range_that_lost_leases_stops_the_run_instead_of_skipping_claims() -> None:
    part = ClaimRange(run_id="r", number=3, low=10, high=99, claims=50)
    expect_leases(part, read=30, done_before=20)  # a retry: 20 marked by the dead attempt, 30 still leased
    with pytest.raises(StageError, match="range 3 holds 49 of its 50 leases"):
        expect_leases(part, read=49)
