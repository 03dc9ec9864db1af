"""`claims-etl reprice --release 2026B` (docs/spec.md §7): after a revised release is loaded, the
processed claims with a line in its window whose amounts change are replaced, their previous lines
kept in priced_claim_line_history; a dry run changes nothing; a reprice killed after a chunk's commit
and run again ends with every claim replaced exactly once."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from claims_etl.reference.store import ReleaseFiles, load_release
from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, seed, write_rvu_file
from tests import db
from tests.db import read_source
from tests.helpers import Reader, expected_outputs

CLAIMS, SEED = 400, 41


def _reprice(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*db.FAULTY_CLI, "reprice", "--release", "2026B", "--json", *args],
        env=db.cli_env(settings, CLAIMS_ETL_LOAD_CHUNK_CLAIMS="20", **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def processed(settings: Settings, tmp_path: Path) -> Settings:
    """Seeded claims, all run through 2026A; then a 2026B release (work RVUs 0.25 higher) from April 1."""
    seed(settings, CLAIMS, seed=SEED, invalid_rate=0.1, directory=tmp_path)
    assert db.run_cli(db.cli_env(settings)).returncode == 0
    revised = tmp_path / "PPRRVU26_B.csv"
    write_rvu_file(revised, code_pool(SEED).with_columns(pl.col("work") + 25), 2026)
    load_release(settings, ReleaseFiles(rvu=revised), year=2026, release="2026B", effective=date(2026, 4, 1),
                 qp_cf=Decimal("33.5675"))  # fmt: skip
    return settings


def _in_window() -> pl.Series:
    """Processed claims with a line served from 2026-04-01 on: every one changes (its fee does)."""
    return read_source(
        "SELECT DISTINCT c.claim_id FROM staging.claims AS c JOIN staging.claim_lines AS l USING (claim_id) "
        "WHERE c.status = 'processed' AND l.service_date >= '2026-04-01' ORDER BY 1"
    ).get_column("claim_id")


def _assert_repriced_once(settings: Settings, read_target: Reader, changed: pl.Series, run_ids: set[str]) -> None:
    expected_lines, _ = expected_outputs(settings)  # the pure stages on today's reference: 2026B included
    lines = read_target(
        "SELECT claim_id, line_number, CAST(allowed_amount * 100 AS DECIMAL(14, 0)) AS allowed_cents, "
        "CAST(fee_schedule_amount * 100 AS DECIMAL(14, 0)) AS fee_cents, rvu_release, run_id "
        "FROM warehouse.priced_claim_lines"
    ).sort("claim_id", "line_number")
    want = expected_lines.select("claim_id", "line_number", "allowed_cents", "fee_schedule_cents", "rvu_release")
    assert (
        lines.select(pl.exclude("run_id")).with_columns(pl.col("allowed_cents", "fee_cents").cast(pl.Int64)).rows()
        == want.rows()
    )
    history = read_target(
        "SELECT claim_id, line_number, replaced_by_run, rvu_release FROM warehouse.priced_claim_line_history"
    )
    old_lines = expected_lines.filter(pl.col("claim_id").is_in(changed.implode())).height
    assert history.height == old_lines  # each replaced line kept once, whatever crashed
    assert set(history.get_column("replaced_by_run")) == run_ids
    assert set(history.get_column("rvu_release")) == {"2026A"}
    repriced = lines.filter(pl.col("run_id").str.starts_with("reprice-")).get_column("claim_id").unique().sort()
    assert repriced.to_list() == changed.to_list()
    priced = read_target("SELECT claim_id FROM warehouse.priced_claims").get_column("claim_id")
    assert priced.n_unique() == priced.len()  # no claim twice


def test_reprice_replaces_changed_claims_once_and_keeps_their_history(processed: Settings, read_target: Reader) -> None:
    changed = _in_window()
    assert 0 < changed.len() < CLAIMS
    dry = _reprice(processed, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["claims_changed"] == changed.len()
    assert Decimal(json.loads(dry.stdout)["allowed_change"]) > 0
    assert read_target("SELECT count(*) AS n FROM warehouse.priced_claim_line_history").item() == 0

    done = _reprice(processed)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["claims_changed"], summary["allowed_change"]) == (
        changed.len(),
        json.loads(dry.stdout)["allowed_change"],
    )
    _assert_repriced_once(processed, read_target, changed, {summary["run_id"]})
    again = json.loads(_reprice(processed).stdout)
    assert again["claims_changed"] == 0  # nothing left to change
    assert read_source("SELECT count(*) AS n FROM staging.claims WHERE status = 'pending'").item() == 0


def test_a_reprice_killed_after_a_commit_and_run_again_replaces_each_claim_once(
    processed: Settings, read_target: Reader
) -> None:
    changed = _in_window()
    killed = _reprice(processed, CLAIMS_ETL_FAULT="reprice_after_commit:2")
    assert killed.returncode == -9, killed.stderr
    after_crash = read_target("SELECT DISTINCT replaced_by_run FROM warehouse.priced_claim_line_history")
    assert after_crash.height == 1  # two chunks committed by the killed reprice
    rerun = _reprice(processed)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert 0 < summary["claims_changed"] < changed.len()  # only what the killed one had not replaced
    runs = {after_crash.item(), summary["run_id"]}
    _assert_repriced_once(processed, read_target, changed, runs)
