"""Consistent reads (issue 19 item 7): a producer that corrects a claim and its lines in one transaction
(total_charge and a line's charge together) while a run reads them never gets the claim rejected for a
mismatch (V13) that was never in the source. The run pauses after its first read of the source, the
producer commits during the pause, and the claim must come out priced with a total that is the sum of
its lines, as one snapshot saw them. Read in two statements (claims, then lines), it was rejected."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import psycopg
import pytest

from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.stages.validate import validate
from claims_etl.synthetic import seed
from tests.db import RUN_DATE, SOURCE_URL, cli_env, read_source, start_paused_run
from tests.helpers import Reader

CLAIMS = 30
PAUSE_SECONDS = "6"


def _an_accepted_claim(settings: Settings) -> int:
    """A claim the rules accept (its prices do not matter, only that it is not rejected)."""
    claims = read_source("SELECT *, false AS recovered FROM staging.etl_claims")
    lines = read_source("SELECT * FROM staging.etl_claim_lines")
    accepted = validate(claims, lines, read_frames(settings), run_date=RUN_DATE).accepted_claims
    return int(accepted.get_column("claim_id").min())  # type: ignore[arg-type]


def _correct_claim_and_line(claim_id: int) -> None:
    """The producer's correction: one more dollar on the claim's first line and on its total, in one
    transaction (the producer rule, docs/spec.md §1)."""
    with psycopg.connect(SOURCE_URL) as connection:
        connection.execute(
            "UPDATE staging.claim_lines SET charge = charge + 1 WHERE claim_id = %s AND line_number = "
            "(SELECT min(line_number) FROM staging.claim_lines WHERE claim_id = %s)",
            [claim_id, claim_id],
        )
        connection.execute("UPDATE staging.claims SET total_charge = total_charge + 1 WHERE claim_id = %s", [claim_id])


@pytest.mark.parametrize("partitions", ["1", "2"])
def test_a_claim_and_its_lines_changed_together_during_the_read_are_priced_consistently(
    settings: Settings, read_target: Reader, tmp_path: Path, partitions: str
) -> None:
    seed(settings, CLAIMS, seed=5, invalid_rate=0.0, directory=tmp_path)
    claim_id = _an_accepted_claim(settings)
    paused = tmp_path / "paused"  # created by the run when its first read of the source is done
    env = cli_env(
        settings,
        CLAIMS_ETL_FAULT="pause_after_read",
        CLAIMS_ETL_FAULT_PAUSE=PAUSE_SECONDS,
        CLAIMS_ETL_FAULT_ONCE_FILE=str(paused),
        CLAIMS_ETL_PARTITIONS=partitions,
    )
    run = start_paused_run(env, paused)
    _correct_claim_and_line(claim_id)  # committed while the run pauses between its reads
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    rejected = read_target(f"SELECT rule_ids FROM warehouse.rejected_claims WHERE claim_id = {claim_id}")
    assert rejected.height == 0, f"rejected with {rejected.rows()}: claims and lines read from two snapshots"
    total = read_target(f"SELECT total_charge FROM warehouse.priced_claims WHERE claim_id = {claim_id}")
    lines = read_target(f"SELECT charge FROM warehouse.priced_claim_lines WHERE claim_id = {claim_id}")
    line_sum = lines.select(pl.col("charge").cast(pl.Float64).sum()).item()
    assert total.height == 1 and abs(float(total.item()) - line_sum) < 0.001
