"""Assertions and subprocess helpers the integration and crash tests share: the pure stages' expected
outputs, `claims-etl run`/`reconcile` in their own process, and the exactly-once checks every test of
a repaired or interrupted run ends with. Imports connect to nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import polars as pl

from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from tests import db
from tests.db import RUN_DATE, read_source

Reader = Callable[[str], pl.DataFrame]  # a query on the warehouse -> its rows (tests/db.py's `read_target`)
CLAIMS = 1_200  # the claims most exactly-once tests seed
CHUNK = 250  # 6 load chunks of CLAIMS: 4 x 250, 138, and a quarter chunk last (load.chunk_spans)


def expected_outputs(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the warehouse must hold, computed by the pure stages from the source rows directly."""
    claims = read_source("SELECT *, false AS recovered FROM staging.etl_claims")
    lines = read_source("SELECT * FROM staging.etl_claim_lines")
    frames = read_frames(settings)
    validated = validate(claims, lines, frames, run_date=RUN_DATE)
    priced = price(validated.accepted_claims, validated.accepted_lines, frames)
    return priced.lines, validated.rejected


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `claims-etl run` subprocess on the test databases, in CHUNK-claim chunks."""
    return db.cli_env(settings, CLAIMS_ETL_LOAD_CHUNK_CLAIMS=str(CHUNK), **extra)


def run_cli(
    settings: Settings, fault: str | None = None, load_connections: int = 1
) -> subprocess.CompletedProcess[str]:
    extra = {"CLAIMS_ETL_LOAD_CONNECTIONS": str(load_connections)} | ({"CLAIMS_ETL_FAULT": fault} if fault else {})
    return db.run_cli(cli_env(settings, **extra))


def reconcile(settings: Settings) -> tuple[int, dict[str, Any]]:
    """`claims-etl reconcile --json` in its own process: its exit code and report."""
    result = subprocess.run(
        [sys.executable, "-m", "claims_etl", "reconcile", "--json"],
        env=db.cli_env(settings), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1) and result.stderr.strip() == "", result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, report


def assert_reconciled(settings: Settings, claims: int = CLAIMS) -> None:
    code, report = reconcile(settings)
    assert (code, report["consistent"]) == (0, True), report["differences"]
    assert sum(report["warehouse_rows"].values()) == claims and report["in_flight"] == 0


def assert_exactly_once_and_exact(settings: Settings, read_target: Reader, claims: int = CLAIMS) -> None:
    """Every claim once in priced or rejected, all its lines, statuses consistent, amounts exact."""
    expected_lines, expected_rejected = expected_outputs(settings)
    priced = read_target("SELECT claim_id, line_count FROM warehouse.priced_claims").sort("claim_id")
    rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    ids = pl.concat([priced.select("claim_id"), rejected.select("claim_id")]).get_column("claim_id")
    assert ids.len() == claims, f"{claims - ids.n_unique()} lost, {ids.len() - ids.n_unique()} duplicated"
    assert ids.n_unique() == claims
    assert rejected.rows() == expected_rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    lines = read_target(
        "SELECT claim_id, line_number, allowed_amount, fee_schedule_amount FROM warehouse.priced_claim_lines"
    ).sort("claim_id", "line_number")
    want = expected_lines.select(
        "claim_id",
        "line_number",
        (pl.col("allowed_cents") / 100).alias("allowed"),
        (pl.col("fee_schedule_cents") / 100),
    )
    assert lines.height == want.height
    assert lines.select("claim_id", "line_number").rows() == want.select("claim_id", "line_number").rows()
    assert (lines.get_column("allowed_amount").cast(pl.Float64) - want.get_column("allowed")).abs().max() < 0.001  # type: ignore[operator]
    line_counts = expected_lines.group_by("claim_id").len().sort("claim_id")
    assert priced.rows() == line_counts.rows()
    statuses = read_source("SELECT claim_id, status FROM staging.claims ORDER BY claim_id").join(
        rejected.select("claim_id", pl.lit("rejected").alias("want")), on="claim_id", how="left"
    )
    assert statuses.filter(pl.col("status") != pl.col("want").fill_null("processed")).height == 0
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0
