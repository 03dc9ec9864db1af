"""`--limit` after a crash (issue 29): the dead run's claims a run takes over count first against its
limit, a dead range larger than what is left of the limit is cut there (the rest waits, still the
dead run's, for a later run), and `run --dry-run` says beforehand what the run then does, the
recovered claims included (`claims_recovered`)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests import db
from tests.db import read_source
from tests.helpers import CLAIMS, Reader, assert_exactly_once_and_exact, assert_reconciled, cli_env

# Ranges of the crashed run (--limit 800, the local engine's first range a quarter): 100, 400, 300
# claims; it dies once range 2's first chunk is committed, so ranges 2 and 3 (700 claims) are dead.
RANGE_CLAIMS = 400
CRASH_LIMIT = 800
COMPARED = ("claims_read", "claims_recovered", "claims_priced", "claims_rejected")


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return cli_env(settings, CLAIMS_ETL_RANGE_CLAIMS=str(RANGE_CLAIMS), **extra)


def _not_pending() -> int:
    return int(read_source("SELECT count(*) FROM staging.claims WHERE status <> 'pending'").item())


def _dry_then_run(settings: Settings, limit: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """`run --dry-run --limit N --json`, then `run --limit N --json`: both summaries."""
    dry = db.claims_etl_cli(_env(settings), "run", "--dry-run", "--json", "--limit", str(limit))
    assert dry.returncode == 0, dry.stderr
    done = db.run_cli(_env(settings), "--limit", str(limit))
    assert done.returncode == 0, done.stderr
    return json.loads(dry.stdout), json.loads(done.stdout)


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_limit_counts_recovered_claims_first_and_the_dry_run_says_so(
    settings: Settings, read_target: Reader, tmp_path: Path
) -> None:
    seed(settings, CLAIMS, seed=31, invalid_rate=0.1, directory=tmp_path)
    crashed = db.run_cli(_env(settings, CLAIMS_ETL_FAULT="after_commit:2", CLAIMS_ETL_LIMIT=str(CRASH_LIMIT)))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    dead = read_source("SELECT coalesce(sum(claims), 0) FROM staging.range_leases").item()
    assert dead == 700 and _not_pending() == 100

    # Range 2 (400) is larger than the limit: cut after its first 300 claims, the rest stays dead.
    dry, ran = _dry_then_run(settings, 300)
    assert (dry["claims_read"], dry["claims_recovered"]) == (300, 300)
    assert {k: dry[k] for k in COMPARED} == {k: ran[k] for k in COMPARED}
    assert _not_pending() == 400

    # The 100 left of range 2 and range 3 (300) recovered, then 100 new claims: 500 in all.
    dry, ran = _dry_then_run(settings, 500)
    assert (dry["claims_read"], dry["claims_recovered"]) == (500, 400)
    assert {k: dry[k] for k in COMPARED} == {k: ran[k] for k in COMPARED}
    assert _not_pending() == 900
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0

    dry, ran = _dry_then_run(settings, CLAIMS)
    assert (dry["claims_read"], dry["claims_recovered"]) == (300, 0)
    assert {k: dry[k] for k in COMPARED} == {k: ran[k] for k in COMPARED}
    assert_exactly_once_and_exact(settings, read_target)
    assert_reconciled(settings)
