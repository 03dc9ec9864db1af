"""Validation rules V01-V17 (docs/spec.md §5): each tripped alone, several at once, and the boundaries."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from claims_etl.stages.columns import per_distinct
from claims_etl.stages.rules import invalid_npi
from claims_etl.stages.validate import validate
from tests.factories import (
    CMS_2026,
    OTHER_VALID_NPI,
    claim,
    claims_frame,
    gpci_row,
    line,
    lines_frame,
    reference,
    rvu_row,
)

RUN_DATE = date(2026, 11, 1)
REFERENCE = reference(
    [
        *CMS_2026,
        rvu_row("71046", 0.22, 0.70, 0.70, 0.02, pctc_ind="1"),
        rvu_row("71046", 0.22, 0.07, 0.07, 0.01, modifier="26", pctc_ind="1"),
        rvu_row("71046", 0.00, 0.63, 0.63, 0.01, modifier="TC", pctc_ind="1"),
        rvu_row("G0101", 0.45, 0.60, 0.30, 0.03),
        rvu_row("G0102", 0.45, 0.60, 0.30, 0.03),
        rvu_row("G0102", 0.45, 0.60, 0.30, 0.03, modifier="26"),
        rvu_row("0001F", 0.0, 0.0, 0.0, 0.0, status_code="M"),
        rvu_row("99214", 1.92, 2.00, 0.47, 0.14, year=2025),
    ],
    [gpci_row(), gpci_row(year=2025)],
)


def rule_ids(claims: list[dict[str, Any]], lines: list[dict[str, Any]]) -> dict[int, str]:
    result = validate(claims_frame(*claims), lines_frame(*lines), REFERENCE, run_date=RUN_DATE)
    accepted = dict.fromkeys(result.accepted_claims.get_column("claim_id").to_list(), "")
    return accepted | dict(result.rejected.select("claim_id", "rule_ids").iter_rows())


def single(claim_overrides: dict[str, Any] | None = None, *line_overrides: dict[str, Any]) -> str:
    lines = [line(**({"line_number": i + 1} | o)) for i, o in enumerate(line_overrides or ({},))]
    total = sum(row["charge_cents"] or 0 for row in lines)
    return rule_ids([claim(**({"total_charge_cents": total} | (claim_overrides or {})))], lines)[1]


def test_a_valid_claim_is_accepted_with_its_lines() -> None:
    result = validate(claims_frame(claim()), lines_frame(line()), REFERENCE, run_date=RUN_DATE)
    assert (result.accepted_claims.height, result.accepted_lines.height, result.rejected.height) == (1, 1, 0)


@pytest.mark.parametrize(
    ("claim_overrides", "line_overrides", "expected"),
    [
        ({"billing_npi": "1234567890"}, {}, "V01"),  # wrong check digit
        ({"billing_npi": "3234567893"}, {}, "V01"),  # first digit not 1 or 2
        ({"billing_npi": "123456789"}, {}, "V01"),
        ({"billing_npi": "12345678a3"}, {}, "V01"),
        ({"rendering_npi": "1245319598"}, {}, "V02"),
        ({"diagnosis_1": ""}, {}, "V03"),
        ({"diagnosis_1": "e11.9"}, {}, "V03"),
        ({"diagnosis_2": "E11."}, {}, "V03"),
        ({"diagnosis_3": "1234"}, {}, "V03"),
        ({}, {"procedure_code": "9921"}, "V04,V05"),  # malformed codes have no RVU row either
        ({}, {"procedure_code": "99999"}, "V05"),
        (
            {"received_date": date(2024, 7, 1)},
            {"service_date": date(2024, 6, 1)},
            "V05,V14",
        ),  # no 2024 schedule
        ({}, {"modifier_1": "2"}, "V06"),
        ({}, {"modifier_1": "26"}, "V05,V06"),  # 99214 has no 26 row
        ({}, {"procedure_code": "G0102", "modifier_1": "26"}, ""),  # CMS publishes a 26 row: paid (PCTC IND 6 codes)
        ({}, {"procedure_code": "G0102", "modifier_1": "TC"}, "V05,V06"),  # but no TC row
        ({}, {"procedure_code": "71046", "modifier_1": "26", "modifier_2": "TC"}, "V06"),
        ({}, {"units": 0}, "V07"),
        ({}, {"units": 1000}, "V07"),
        ({"total_charge_cents": 0}, {"charge_cents": 0}, "V08"),
        ({}, {"service_date": date(2026, 11, 2)}, "V09"),  # after the run date
        ({"patient_dob": date(2026, 3, 3)}, {}, "V09"),  # before birth
        ({"received_date": date(2027, 3, 3)}, {}, "V10"),
        ({"place_of_service": "00"}, {}, "V11"),
        ({}, {"place_of_service": "28"}, "V11"),
        ({"total_charge_cents": 19_999}, {}, "V13"),
        ({"mac": "99999"}, {}, "V14"),
        ({}, {"line_number": 0}, "V17"),
        ({}, {"line_number": -32_768}, "V17"),
        ({}, {"line_number": 51}, "V17"),
        ({}, {"line_number": 10_000}, "V17"),
    ],
)
def test_each_rule_trips_alone(claim_overrides: dict[str, Any], line_overrides: dict[str, Any], expected: str) -> None:
    assert single(claim_overrides, line_overrides) == expected


def test_v12_duplicate_lines_absent_modifiers_equal() -> None:
    assert single({}, {}, {}) == "V12"
    assert single({}, {"modifier_1": "59"}, {}) == ""
    assert single({}, {}, {"service_date": date(2026, 3, 3)}) == ""


def test_v12_compares_modifier_text_by_position_blank_as_absent() -> None:
    """Modifiers compare through their numbers per distinct value: equal exactly when the text is."""
    assert single({}, {"modifier_1": "59"}, {"modifier_1": "59"}) == "V12"
    assert single({}, {"modifier_1": "59"}, {"modifier_1": "XS"}) == ""
    assert single({}, {"modifier_2": "59"}, {"modifier_3": "59"}) == ""
    assert single({}, {"modifier_1": " "}, {}) == "V12"
    assert single({}, {"modifier_1": "59", "modifier_2": "XS"}, {"modifier_1": "XS", "modifier_2": "59"}) == ""


def test_v15_a_claim_without_lines() -> None:
    assert rule_ids([claim(total_charge_cents=0)], []) == {1: "V15"}


def test_v13_a_claim_without_lines_must_total_zero() -> None:
    assert rule_ids([claim(total_charge_cents=100)], []) == {1: "V13,V15"}


def test_boundaries_that_pass() -> None:
    assert single({"received_date": date(2027, 3, 2)}, {}) == ""  # exactly one year
    assert single({}, {"units": 999, "charge_cents": 1}) == ""
    assert single({}, {"line_number": 50}) == ""
    assert single({}, {"service_date": RUN_DATE, "procedure_code": "99214"}) == ""
    assert single({"rendering_npi": OTHER_VALID_NPI, "diagnosis_2": "S52521A", "diagnosis_3": "E119"}, {}) == ""
    assert single({}, {"procedure_code": "71046", "modifier_1": "TC"}) == ""
    assert single({}, {"procedure_code": "0001F"}) == ""  # 4 digits + F, status M: priced at 0 later
    assert single({}, {"procedure_code": "G0101"}) == ""


def test_v10_leap_day_plus_one_year_is_28_february() -> None:
    leap = {"service_date": date(2024, 2, 29), "procedure_code": "99214"}
    ref_2024 = reference([rvu_row("99214", 1.0, 1.0, 1.0, 0.1, year=2024)], [gpci_row(year=2024)])

    def ids(received: date) -> str:
        result = validate(
            claims_frame(claim(received_date=received)),
            lines_frame(line(**leap)),
            ref_2024,
            run_date=RUN_DATE,
        )
        return result.rejected.get_column("rule_ids").to_list()[0] if result.rejected.height else ""

    assert ids(date(2025, 2, 28)) == ""
    assert ids(date(2025, 3, 1)) == "V10"


def test_a_claim_breaking_several_rules_keeps_every_id_sorted() -> None:
    claims = [claim(billing_npi="1234567890", place_of_service="00", diagnosis_1="bad", total_charge_cents=1)]
    lines = [
        line(line_number=1, units=0, procedure_code="99999"),
        line(line_number=2, charge_cents=0, modifier_1="%%", service_date=date(2030, 1, 1)),
    ]
    assert rule_ids(claims, lines) == {1: "V01,V03,V05,V06,V07,V08,V09,V11,V13,V14"}


def test_rejection_is_per_claim_other_claims_unaffected() -> None:
    claims = [claim(claim_id=1), claim(claim_id=2, total_charge_cents=5)]
    lines = [line(claim_id=1), line(claim_id=2, charge_cents=5, units=0)]
    result = validate(claims_frame(*claims), lines_frame(*lines), REFERENCE, run_date=RUN_DATE)
    assert result.accepted_claims.get_column("claim_id").to_list() == [1]
    assert result.accepted_lines.get_column("claim_id").to_list() == [1]
    assert result.rejected.select("claim_id", "rule_ids").rows() == [(2, "V07")]


def test_nulls_in_required_fields_are_rejections_not_crashes() -> None:
    claims = [
        claim(
            billing_npi=None,
            mac=None,
            locality=None,
            place_of_service=None,
            diagnosis_1=None,
            total_charge_cents=None,
            received_date=None,
        )
    ]
    lines = [line(procedure_code=None, units=None, charge_cents=None, service_date=None)]
    assert rule_ids(claims, lines) == {1: "V01,V03,V04,V05,V07,V08,V09,V10,V11,V13,V14"}


def test_npi_luhn_against_published_examples() -> None:
    npis = pl.DataFrame({"npi": ["1234567893", "1245319599", "1234567890", None, "2000000002"]})
    assert npis.select(invalid_npi(pl.col("npi"))).to_series().to_list() == [False, False, True, True, False]


def test_per_distinct_value_agrees_with_every_row_including_nulls_and_repeats() -> None:
    """What a rule computes once per distinct value must land on every row holding that value."""
    npis = ["1234567893", None, "1234567890", "1234567893", None, "2000000002", "1234567890", " "]
    frame = pl.DataFrame({"npi": npis})
    row_by_row = frame.select(invalid_npi(pl.col("npi"))).to_series().to_list()
    assert frame.select(per_distinct("npi", invalid_npi)).to_series().to_list() == row_by_row
    assert row_by_row == [False, True, True, False, True, False, True, True]
