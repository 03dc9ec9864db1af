"""Crash recovery of a range whose interval touches 2^63 - 1 (issue 29 item 2): a run killed while it
loads that range leaves its lease behind; the rerun takes it over and loads its claims exactly once."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests import db
from tests.db import read_source
from tests.helpers import Reader, assert_exactly_once_and_exact, assert_reconciled, cli_env
from tests.integration.pipeline.test_extreme_ids import BOTTOM, CLAIMS, EXTREMES, TOP, move_claims


@pytest.fixture
def extreme(settings: Settings, tmp_path: Path) -> Settings:
    seed(settings, CLAIMS, seed=29, invalid_rate=0.1, directory=tmp_path)
    move_claims(EXTREMES)
    return settings


@pytest.mark.parametrize(
    ("fault", "range_claims", "interval", "recovered"),
    [
        # ranges of 10, 40, 40 and 30 claims, one chunk each: chunk 4 is the last range, up to 2^63 - 1
        ("during_write:4", 40, (CLAIMS - 30 + 1, TOP), 30),
        ("after_commit:4", 40, (CLAIMS - 30 + 1, TOP), 30),
        ("during_mark:4", 40, (CLAIMS - 30 + 1, TOP), 30),
        # one range over the whole domain, read in 4 partitions
        ("after_commit:1", 100_000, (BOTTOM, TOP), CLAIMS),
    ],
)
def test_a_crashed_range_touching_the_top_id_is_recovered_once(
    extreme: Settings,
    read_target: Reader,
    fault: str,
    range_claims: int,
    interval: tuple[int, int],
    recovered: int,
) -> None:
    extra = {"CLAIMS_ETL_RANGE_CLAIMS": str(range_claims), "CLAIMS_ETL_PARTITIONS": "4"}
    crashed = db.run_cli(cli_env(extreme, CLAIMS_ETL_FAULT=fault, **extra))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert read_source("SELECT low, high FROM staging.range_leases").rows() == [interval]
    repaired = db.run_cli(cli_env(extreme, **extra))
    assert repaired.returncode == 0, repaired.stderr
    summary = json.loads(repaired.stdout)
    assert (summary["claims_recovered"], summary["claims_read"]) == (recovered, recovered)
    assert_exactly_once_and_exact(extreme, read_target, claims=CLAIMS)
    assert_reconciled(extreme, claims=CLAIMS)
    again = db.run_cli(cli_env(extreme, **extra))
    assert again.returncode == 0 and json.loads(again.stdout)["claims_read"] == 0, again.stderr
