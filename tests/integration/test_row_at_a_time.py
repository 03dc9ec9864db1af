"""The row-at-a-time baseline (benchmarks/row_at_a_time.py) is an independent, plain-Python
implementation of docs/spec.md §4 and 5: on the same claims it must produce exactly the engine's rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import row_at_a_time
from claims_etl.dev.seed import seed
from claims_etl.settings import Settings
from tests.integration.test_pipeline import Reader, expected_outputs


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_row_at_a_time_agrees_with_the_engine(settings: Settings, read_target: Reader, tmp_path: Path) -> None:
    seed(settings, 400, seed=21, invalid_rate=0.2, directory=tmp_path)
    expected_lines, expected_rejected = expected_outputs(settings)
    result = row_at_a_time.run(settings, limit=10_000)
    assert (result["claims"], result["rejected"]) == (400, expected_rejected.height)
    rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    assert rejected.rows() == expected_rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    lines = read_target(
        "SELECT claim_id, line_number, CAST(allowed_amount * 100 AS SIGNED) AS allowed_cents, "
        "CAST(fee_schedule_amount * 100 AS SIGNED) AS fee_cents, pricing_note FROM priced_claim_lines"
    ).sort("claim_id", "line_number")
    want = expected_lines.select("claim_id", "line_number", "allowed_cents", "fee_schedule_cents", "pricing_note")
    assert lines.rows() == want.rows()
