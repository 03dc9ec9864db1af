"""The row-at-a-time baseline (benchmarks/row_at_a_time.py) is an independent, plain-Python
implementation of docs/spec.md §4 (steps 4a-4c included), 5 and 7: on the same claims, with a mid-year
release and a QP list loaded, it must produce exactly the engine's rows. Its frame entry point
(`check_frames`) is checked without a database in tests/unit/stages/test_price_medicare.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from benchmarks import row_at_a_time
from claims_etl.reference.store import ReleaseFiles, load_qp_list, load_release, read_frames
from claims_etl.settings import Settings
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.synthetic import code_pool, seed, write_rvu_file
from tests.db import RUN_DATE, read_source
from tests.helpers import Reader, expected_outputs


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_row_at_a_time_agrees_with_the_engine(settings: Settings, read_target: Reader, tmp_path: Path) -> None:
    seed(settings, 400, seed=21, invalid_rate=0.2, directory=tmp_path)
    revised = tmp_path / "PPRRVU26_B.csv"  # every work RVU 0.37 higher from April 1
    write_rvu_file(revised, code_pool(21).with_columns(pl.col("work") + 37), 2026)
    load_release(settings, ReleaseFiles(rvu=revised), year=2026, release="2026B", effective=date(2026, 4, 1),
                 qp_cf=Decimal("33.5675"))  # fmt: skip
    read_source("SELECT DISTINCT coalesce(rendering_npi, billing_npi) AS npi FROM staging.claims LIMIT 60").write_csv(
        tmp_path / "qp.csv"
    )
    load_qp_list(settings, tmp_path / "qp.csv", 2026)
    expected_lines, expected_rejected = expected_outputs(settings)
    result = row_at_a_time.run(settings, limit=10_000)
    assert (result["claims"], result["rejected"]) == (400, expected_rejected.height)
    rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    assert rejected.rows() == expected_rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    lines = read_target(
        "SELECT claim_id, line_number, CAST(allowed_amount * 100 AS SIGNED) AS allowed_cents, "
        "CAST(fee_schedule_amount * 100 AS SIGNED) AS fee_cents, pricing_note, rvu_release, cf_kind "
        "FROM priced_claim_lines"
    ).sort("claim_id", "line_number")
    want = expected_lines.select(
        "claim_id", "line_number", "allowed_cents", "fee_schedule_cents", "pricing_note", "rvu_release", "cf_kind"
    )
    assert lines.rows() == want.rows()
    assert {("2025A", "non_qp"), ("2026A", "qp"), ("2026B", "qp"), ("2026B", "non_qp")} <= set(
        lines.select("rvu_release", "cf_kind").iter_rows()
    )
    # With diagnostic codes in the seed (issue 28), the rows compared include lines the diagnostic MPPR
    # or the OPPS cap decided: the seed's imaging rows carry OPPS RVUs below their PFS ones, so nearly
    # every imaging line is capped if no reduction takes it under the cap first.
    diagnostic = read_frames(settings).rvu.filter(pl.col("mult_proc").is_in(["4", "6", "7"]))
    if diagnostic.height:
        notes = set(lines.get_column("pricing_note"))
        assert any(note.startswith(("MPPR_", "OPPS_CAP")) for note in notes), notes


ORACLE_RULES = """
[V10]
days = 200

[V07]
min = 1
max = 3

[V11]
codes = ["02", "11", "19", "21", "22", "23", "24", "31"]

[V01]
luhn = false

[V13]
severity = "warn"

[V12]
enabled = false

[pricing]
facility_pos = ["11", "21"]

[[custom]]
id = "NO_DX2"
level = "claim"
description = "a second diagnosis given"
expression = "diagnosis_2 IS NOT NULL AND line_count >= 2"
severity = "warn"

[[custom]]
id = "CHEAP"
level = "line"
description = "a line charged under $20"
expression = "charge_cents < 2000"
"""


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_row_at_a_time_agrees_under_a_rules_file(settings: Settings, read_target: Reader, tmp_path: Path) -> None:
    """Parameters, enable/severity, the facility set and custom expressions (evaluated by the oracle
    with `pl.sql_expr` on one-row frames) give the same rows both ways, warnings included."""
    seed(settings, 400, seed=23, invalid_rate=0.2, directory=tmp_path)
    (tmp_path / "payer.toml").write_text(ORACLE_RULES)
    settings = settings.model_copy(update={"rules_file": tmp_path / "payer.toml"})
    config = settings.rules().config
    claims = read_source("SELECT *, false AS recovered FROM staging.etl_claims")
    lines = read_source("SELECT * FROM staging.etl_claim_lines")
    frames = read_frames(settings)
    checked = validate(claims, lines, frames, run_date=RUN_DATE, rules=config)
    priced = price(checked.accepted_claims, checked.accepted_lines, frames, rules=config)
    assert checked.warnings.height and set(checked.warnings.get_column("rule_id")) == {"NO_DX2", "V13"}
    assert {"CHEAP", "V07", "V10", "V11"} <= set(",".join(checked.rejected.get_column("rule_ids")).split(","))
    result = row_at_a_time.run(settings, limit=10_000)
    assert (result["claims"], result["rejected"]) == (400, checked.rejected.height)
    rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    assert rejected.rows() == checked.rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    warnings = read_target("SELECT claim_id, rule_id FROM warehouse.claim_warnings").sort("claim_id", "rule_id")
    assert warnings.rows() == checked.warnings.rows()
    got = read_target(
        "SELECT claim_id, line_number, facility, CAST(allowed_amount * 100 AS SIGNED) AS allowed_cents "
        "FROM priced_claim_lines"
    ).sort("claim_id", "line_number")
    assert got.rows() == priced.lines.select("claim_id", "line_number", "facility", "allowed_cents").rows()
