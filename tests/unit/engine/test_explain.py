"""`claims-etl explain` without a database (claims_etl/engine/explain.py, worked.py, cli/explain_view.py):
each line's worked computation on small literal fee schedules, every expected formula and amount worked
out by hand in its comment; a rejected claim's rules per line; the consistency check firing when the
engine's numbers are tampered with; no PHI in the text or the JSON.

Two fee schedules of synthetic codes: `AL` (GPCI 1.000 / 0.869 / 0.575, CF 32.3465), where the OPPS
example of issue 28 is reproduced, and `FLAT` (GPCI 1.0, CF 1.0), where a fee is the sum of its RVUs.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

import claims_etl as ce
from claims_etl.cli import explain_view
from claims_etl.cli.app import app
from claims_etl.engine import explain
from tests.factories import (
    RUN_DATE,
    VALID_NPI,
    claim,
    claims_frame,
    gpci_row,
    line,
    lines_frame,
    reference,
    rvu_e4_row,
)

DAY = date(2026, 3, 2)
DOB = date(1960, 5, 17)  # the factories' patient_dob: never in the output


def rvu(hcpcs: str, modifier: str, work: int, pe: int, mp: int, **overrides: Any) -> dict[str, Any]:
    """A 2026 RVU row, RVUs x 10^4 (the same PE in and out of a facility), CF 1.0, no cap."""
    return rvu_e4_row(hcpcs, modifier, work, pe, pe, mp, **overrides)


def schedule(rows: list[dict[str, Any]], pw: int, pe: int, mp: int, *, qp: bool = False) -> ce.ReferenceFrames:
    return reference(rows, [gpci_row(pw=pw, pe=pe, mp=mp)], qp_npis=(VALID_NPI,) if qp else ())


AL_CF = 323_465
AL = schedule(
    [
        # Capped imaging, MULT PROC 4: 1.75 / 7.00 / 0.12, OPPS PE 6.11 and MP 0.11; its 26 row 1.75 / 0.60 / 0.10.
        rvu("R0001", "", 17_500, 70_000, 1_200, conv_factor_e4=AL_CF, mult_proc="4", pctc_ind="1",
            opps_nonfac_pe_rvu_e4=61_100, opps_facility_pe_rvu_e4=61_100, opps_mp_rvu_e4=1_100),
        rvu("R0001", "26", 17_500, 6_000, 1_000, conv_factor_e4=AL_CF, mult_proc="4", pctc_ind="1"),
    ],
    10_000, 8_690, 5_750,
)  # fmt: skip
FLAT_ROWS = [
    # D0001: fee 100.01 = PC 20.01 (its 26 row) + TC 80.00; D0002: fee 60.03 = PC 30.03 + TC 30.00.
    rvu("D0001", "", 200_100, 800_000, 0, mult_proc="4", pctc_ind="1"),
    rvu("D0001", "26", 200_100, 0, 0, mult_proc="4", pctc_ind="1"),
    rvu("D0002", "", 300_300, 300_000, 0, mult_proc="4", pctc_ind="1"),
    rvu("D0002", "26", 300_300, 0, 0, mult_proc="4", pctc_ind="1"),
    rvu("S0002", "", 500_000, 0, 0, mult_proc="2", bilat_surg="1"),  # 50.00
    rvu("S0003", "", 400_000, 0, 0, mult_proc="2"),  # 40.00
    rvu("N0031", "", 100_000, 0, 0, mult_proc="3"),  # 10.00
    rvu("N0032", "", 120_000, 0, 0, mult_proc="3"),  # 12.00
    rvu("Q0009", "", 100_000, 0, 0, status_code="I"),  # 10.00, not payable
]
FLAT = schedule(FLAT_ROWS, 10_000, 10_000, 10_000)


def explained(reference: ce.ReferenceFrames, *lines: dict[str, Any], **claimed: Any) -> dict[str, Any]:
    charge = sum(each["charge_cents"] for each in lines)
    claims = claims_frame(claim(total_charge_cents=charge) | claimed)
    return explain.explanation(claims, lines_frame(*lines), reference, run_date=RUN_DATE, status="pending")


def ln(number: int, code: str, charge: int = 100_000, **overrides: Any) -> dict[str, Any]:
    """A line of one unit on DAY charged $1,000.00 unless given (cents)."""
    return line(line_number=number, procedure_code=code, charge_cents=charge, service_date=DAY) | overrides


def steps(line_: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {each["step"]: (each["formula"], each["amount"]) for each in line_["steps"]}


def test_capped_imaging_line_shows_both_formulas_and_pays_the_opps_amount() -> None:
    found = explained(AL, ln(1, "R0001", 50_000))
    (only,) = found["lines"]
    worked = steps(only)
    # (1.75 + 7.00 x 0.869 + 0.12 x 0.575) x 32.3465 = 7.902 x 32.3465 = 255.602... -> 255.60
    assert worked["pfs_amount"] == (
        "per unit: (1.75 x 1.000 + 7.00 x 0.869 + 0.12 x 0.575) x 32.3465 = 255.60",
        "255.60",
    )
    # Issue 28's example: (1.75 + 6.11 x 0.869 + 0.11 x 0.575) x 32.3465 = 7.12284 x 32.3465 = 230.398... -> 230.40
    assert worked["opps_amount"] == (
        "per unit: (1.75 x 1.000 + 6.11 x 0.869 + 0.11 x 0.575) x 32.3465 = 230.40",
        "230.40",
    )
    # PC: (1.75 + 0.60 x 0.869 + 0.10 x 0.575) x 32.3465 = 2.3289 x 32.3465 = 75.33; TC 255.60 - 75.33 = 180.27.
    assert worked["professional_component"][1] == "75.33"
    assert worked["technical_component"] == ("per unit: 255.60 - 75.33 = 180.27", "180.27")
    # Alone in its group: its TC and PC are the highest, paid in full; then the cap decides.
    assert "this line has the group's highest TC: first unit in full" in worked["mppr_tc"][0]
    assert worked["opps_cap"] == ("per unit: min(255.60, OPPS 230.40) = 230.40", "230.40")
    assert worked["allowed"] == ("round_half_up(230.40 x 1.0, 2) = 230.40", "230.40")
    assert (only["allowed"], only["pricing_note"], only["opps_amount"]) == ("230.40", "OPPS_CAP", "230.40")
    assert (only["inputs"]["rvu_row"] | only["inputs"]["gpci_row"]).items() >= {
        "hcpcs": "R0001",
        "modifier": "",
        "status_code": "A",
        "mult_proc": "4",
        "work_rvu": "1.75",
        "pe_rvu": "7.00",
        "pe_rvu_used": "non-facility",
        "opps_pe_rvu": "6.11",
        "pw_gpci": "1.000",
        "pe_gpci": "0.869",
        "mp_gpci": "0.575",
    }.items()
    assert only["inputs"]["conversion_factor"]["value"] == "32.3465"
    assert (found["outcome"], found["total_allowed"], found["consistent"]) == ("accepted", "230.40", True)


def test_mppr_pair_names_the_top_lines_and_reduces_the_others() -> None:
    found = explained(FLAT, ln(1, "D0001"), ln(2, "D0002"))
    first, second = (steps(each) for each in found["lines"])
    group = "MULT PROC 4 (diagnostic imaging) on 2026-03-02: lines 1, 2"
    # Line 1 has the highest TC (80.00 > 30.00), line 2 the highest PC (30.03 > 20.01).
    assert first["pfs_amount"][0] == "per unit: (20.01 x 1.000 + 80.00 x 1.000 + 0.00 x 1.000) x 1.0000 = 100.01"
    assert first["mppr_tc"] == (f"{group}; this line has the group's highest TC: first unit in full", "80.00")
    assert first["mppr_pc"] == (
        f"{group}; line 2 has the group's highest PC, 30.03; every unit here: 20.01 x 95% = 19.0095",
        "19.0095",
    )
    # Line 1: 80.00 + 19.0095 = 99.0095 -> 99.01.
    assert first["unit_amounts"] == ("first unit: TC 80.00 + PC 19.0095 = 99.0095", "99.0095")
    assert first["allowed"] == ("round_half_up(99.0095 x 1.0, 2) = 99.01", "99.01")
    # Line 2: 30.00 x 50% = 15.00, + 30.03 = 45.03.
    assert second["mppr_tc"] == (
        f"{group}; line 1 has the group's highest TC, 80.00; every unit here: 30.00 x 50% = 15.00",
        "15.00",
    )
    assert second["unit_amounts"][1] == "45.03"
    assert [(each["allowed"], each["pricing_note"]) for each in found["lines"]] == [
        ("99.01", "MPPR_DI"),
        ("45.03", "MPPR_DI"),
    ]
    assert (found["total_allowed"], found["consistent"]) == ("144.04", True)


def test_further_units_of_the_top_line_are_reduced() -> None:
    (only,) = explained(FLAT, ln(1, "D0001", units=3))["lines"]
    worked = steps(only)
    # First unit 100.01 in full; units 2-3: 80.00 x 50% + 20.01 x 95% = 40.00 + 19.0095 = 59.0095 each.
    assert worked["unit_amounts"][0] == (
        "first unit: TC 80.00 + PC 20.01 = 100.01; units 2-3: 40.00 + 19.0095 = 59.0095 each"
    )
    # 100.01 + 2 x 59.0095 = 218.029 -> 218.03.
    assert worked["amount"] == ("100.01 + 2 x 59.0095 = 218.029", "218.029")
    assert only["allowed"] == "218.03"


def test_adjustment_factor_parts_and_the_charge_cap() -> None:
    found = explained(FLAT, ln(1, "S0003"), ln(2, "S0002", 6_000, modifier_1="50"))
    first, second = (steps(each) for each in found["lines"])
    # Line 2 ranks first: 50.00 x 1 x 1.5 = 75.00 > 40.00; line 1 is secondary: 40.00 x 0.5 = 20.00.
    assert first["adjustment_factor"] == (
        "0.5 (MULT PROC 2, secondary: line 2 ranks first on 2026-03-02 by fee x units x factors, 75.00) = 0.5",
        "0.5",
    )
    assert second["adjustment_factor"][0] == (
        "1.5 (bilateral: modifier 50, BILAT SURG 1) = 1.5; MULT PROC 2: this line ranks first on 2026-03-02 "
        "(75.00), not reduced"
    )
    # 50.00 x 1.5 = 75.00, above the charge of 60.00.
    assert second["allowed"] == ("round_half_up(50.00 x 1.5, 2) = 75.00", "75.00")
    assert second["charge_cap"] == ("min(charge 60.00, 75.00) = 60.00", "60.00")
    assert [each["allowed"] for each in found["lines"]] == ["20.00", "60.00"]
    assert found["consistent"]


def test_not_applied_reductions_and_unpayable_status_are_said() -> None:
    found = explained(FLAT, ln(1, "N0031"), ln(2, "N0032"), ln(3, "Q0009"))
    first, _, third = (steps(each) for each in found["lines"])
    assert first["not_applied"][0] == (
        "MULT PROC 3 (endoscopy base-code rules) with line(s) 2 on 2026-03-02: Medicare would reduce it, "
        "the engine does not (docs/spec.md §4c)"
    )
    assert third["allowed"] == ("STATUS CODE I is not payable (A, R, T are): 0.00", "0.00")
    assert [(each["allowed"], each["pricing_note"]) for each in found["lines"]] == [
        ("10.00", "NO_MPPR_3"),
        ("12.00", "NO_MPPR_3"),
        ("0.00", "STATUS_I"),
    ]
    assert (found["total_allowed"], found["consistent"]) == ("22.00", True)


def test_qp_conversion_factor_is_named() -> None:
    reference = schedule([rvu("S0003", "", 400_000, 0, 0, qp_conv_factor_e4=12_500)], 10_000, 10_000, 10_000, qp=True)
    (only,) = explained(reference, ln(1, "S0003"))["lines"]
    assert only["inputs"]["conversion_factor"] == {
        "value": "1.2500",
        "kind": "QP",
        "why": "the claim's NPI (rendering, else billing) is on the 2026 QP list",
    }
    assert steps(only)["pfs_amount"][0] == "per unit: (40.00 x 1.000 + 0.00 x 1.000 + 0.00 x 1.000) x 1.2500 = 50.00"


def test_rejected_claim_gives_its_rule_ids_and_each_lines() -> None:
    found = explained(FLAT, ln(1, "A9999"), ln(2, "S0003"), billing_npi="1234567890")
    assert (found["outcome"], found["rule_ids"], found["total_allowed"]) == ("rejected", ["V01", "V05"], None)
    assert set(found["rules"]) == {"V01", "V05"}
    assert [(each["line_number"], each["rule_ids"]) for each in found["lines"]] == [(1, ["V05"]), (2, [])]
    assert all("steps" not in each for each in found["lines"])


def test_a_step_that_differs_from_the_engine_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = explain.priced_detail
    monkeypatch.setattr(
        explain, "priced_detail", lambda keyed, ref: engine(keyed, ref).with_columns(pl.col("allowed_cents") + 1)
    )
    found = explained(FLAT, ln(1, "S0003"))
    assert not found["consistent"]
    assert found["inconsistencies"][0] == "line 1: allowed worked out here is 40.00, the engine's is 40.01"
    text = _text(found)
    assert "CONSISTENCY CHECK FAILED" in text and "the engine's is 40.01" in text


def _text(found: dict[str, Any]) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(explain_view.explanation(found))
    return console.export_text()


def test_text_fits_80_columns_and_neither_form_carries_phi() -> None:
    accepted = explained(AL, ln(1, "R0001", 50_000))
    rejected = explained(FLAT, ln(1, "A9999"), billing_npi="1234567890")
    for found in (accepted, rejected):
        text, document = _text(found), json.dumps(found)
        assert all(len(row) <= 80 for row in text.splitlines())
        for phi in (DOB.isoformat(), "1960", VALID_NPI, "1234567890"):
            assert phi not in text and phi not in document
    assert "(1.75 x 1.000 + 6.11 x 0.869 + 0.11 x 0.575) x 32.3465" in _text(accepted).replace("\n", " ")
    assert "V05" in _text(rejected)


def test_the_command_prints_the_explanation_then_exits_1_on_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    found = explained(FLAT, ln(1, "S0003"))
    found |= {
        "consistent": False,
        "inconsistencies": ["line 1: allowed worked out here is 40.00, the engine's is 40.01"],
    }
    monkeypatch.setattr(explain, "explain", lambda settings, claim_id: found)
    result = CliRunner().invoke(app, ["explain", "1", "--json"], env={"CLAIMS_ETL_LOG_FORMAT": "console"})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["inconsistencies"] == found["inconsistencies"]
    assert result.stderr.startswith("error: explain: claim 1: the worked computation differs from the engine")
