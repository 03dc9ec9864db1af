"""Pricing golden tests (docs/spec.md §4): CMS's published national examples, the multiple procedure
example, half-cent rounding, and every adjustment the contract names."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims_etl.schemas import REJECTED
from claims_etl.stages.load import cents_text, scaled_text, warehouse_frames
from claims_etl.stages.price import price, price_lines
from tests.factories import CMS_2026, claim, claims_frame, gpci_row, line, lines_frame, reference, rvu_row


def priced(claim_rows: list[dict[str, object]], line_rows: list[dict[str, object]], ref: object) -> pl.DataFrame:
    return price_lines(claims_frame(*claim_rows), lines_frame(*line_rows), ref)  # type: ignore[arg-type]


def test_99214_non_facility_is_135_61() -> None:
    result = priced([claim()], [line(procedure_code="99214", charge_cents=50_000)], reference(CMS_2026))
    assert result.select("fee_schedule_cents", "allowed_cents", "facility").row(0) == (13_561, 13_561, 0)


def test_99214_facility_is_84_50() -> None:
    result = priced([claim(place_of_service="22")], [line(charge_cents=50_000)], reference(CMS_2026))
    assert result.select("fee_schedule_cents", "facility").row(0) == (8_450, 1)


def test_line_place_of_service_overrides_the_claims() -> None:
    result = priced(
        [claim(place_of_service="22")],
        [line(place_of_service="11", charge_cents=50_000)],
        reference(CMS_2026),
    )
    assert result.select("fee_schedule_cents", "facility").row(0) == (13_561, 0)


def test_99213_non_facility_is_95_19() -> None:
    result = priced([claim()], [line(procedure_code="99213", charge_cents=50_000)], reference(CMS_2026))
    assert result.get_column("allowed_cents").to_list() == [9_519]


def test_multiple_procedure_example_pays_100_50_50() -> None:
    # Fees $1,043.48, $1,010.60, $922.90: with CF 1 and GPCI 1.0 the fee is the work RVU itself.
    ref = reference(
        [
            rvu_row(code, fee, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2")
            for code, fee in (("10001", 1010.60), ("10002", 1043.48), ("10003", 922.90))
        ]
    )
    lines = [
        line(line_number=n, procedure_code=code, charge_cents=200_000)
        for n, code in ((1, "10001"), (2, "10002"), (3, "10003"))
    ]
    result = priced([claim()], lines, ref).sort("line_number")
    assert result.get_column("fee_schedule_cents").to_list() == [101_060, 104_348, 92_290]
    assert result.get_column("adjustment_factor_e5").to_list() == [50_000, 100_000, 50_000]
    assert sorted(result.get_column("allowed_cents").to_list(), reverse=True) == [104_348, 50_530, 46_145]


def test_multiple_procedure_tie_goes_to_the_lowest_line_number() -> None:
    ref = reference(
        [rvu_row(code, 100.00, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2") for code in ("10001", "10002")]
    )
    lines = [line(line_number=2, procedure_code="10001"), line(line_number=1, procedure_code="10002")]
    result = priced([claim()], lines, ref).sort("line_number")
    assert result.get_column("adjustment_factor_e5").to_list() == [100_000, 50_000]


def test_multiple_procedure_ranks_only_within_one_service_date() -> None:
    ref = reference(
        [rvu_row(code, 100.00, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2") for code in ("10001", "10002")]
    )
    lines = [
        line(line_number=1, procedure_code="10001"),
        line(line_number=2, procedure_code="10002", service_date=date(2026, 3, 3)),
    ]
    assert priced([claim()], lines, ref).get_column("adjustment_factor_e5").to_list() == [100_000, 100_000]


def test_lines_in_any_order_price_the_same_and_come_out_in_claim_line_order() -> None:
    """A run's lines arrive sorted and skip the sort; a notebook's may not: same prices either way."""
    ref = reference(
        [
            rvu_row(code, fee, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2")
            for code, fee in (("10001", 50.0), ("10002", 80.0))
        ]
    )
    claims = [claim(claim_id=7), claim(claim_id=3)]
    lines = [
        line(claim_id=claim_id, line_number=number, procedure_code=code)
        for claim_id, number, code in ((7, 2, "10002"), (3, 2, "10001"), (7, 1, "10001"), (3, 1, "10002"))
    ]
    shuffled = price(claims_frame(*claims), lines_frame(*lines), ref)
    ordered = price(claims_frame(*claims).sort("claim_id"), lines_frame(*lines).sort("claim_id", "line_number"), ref)
    assert shuffled.lines.equals(ordered.lines) and shuffled.claims.equals(ordered.claims)
    assert shuffled.lines.select("claim_id", "line_number", "adjustment_factor_e5").rows() == [
        (3, 1, 100_000),
        (3, 2, 50_000),
        (7, 1, 50_000),
        (7, 2, 100_000),
    ]
    assert shuffled.claims.get_column("claim_id").to_list() == [3, 7]


def test_half_cent_fee_rounds_up_where_binary_floats_round_down() -> None:
    # 2.01 x 0.5 x 1.0 = 1.005 exactly; as a binary float it is 1.00499999..., which rounds to 1.00.
    assert round(2.01 * 0.5, 2) == 1.0
    ref = reference([rvu_row("20000", 2.01, 0, 0, 0, conv_factor_e4=10_000)], [gpci_row(pw=5_000)])
    result = priced([claim()], [line(procedure_code="20000")], ref)
    assert result.get_column("fee_schedule_cents").to_list() == [101]


def test_half_cent_allowed_rounds_up() -> None:
    # fee 10.01 x 0.5 (secondary procedure) = 5.005 -> 5.01
    ref = reference(
        [
            rvu_row("10001", 20.00, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2"),
            rvu_row("10002", 10.01, 0, 0, 0, conv_factor_e4=10_000, mult_proc="2"),
        ]
    )
    lines = [line(line_number=1, procedure_code="10001"), line(line_number=2, procedure_code="10002")]
    assert priced([claim()], lines, ref).get_column("allowed_cents").to_list() == [2_000, 501]


def test_allowed_never_exceeds_the_charge() -> None:
    result = priced([claim()], [line(charge_cents=10_000)], reference(CMS_2026))
    assert result.select("fee_schedule_cents", "allowed_cents").row(0) == (13_561, 10_000)


@pytest.mark.parametrize(
    ("modifiers", "row_overrides", "factor_e5"),
    [
        (["50"], {"bilat_surg": "1"}, 150_000),
        (["50"], {"bilat_surg": "0"}, 100_000),
        (["80"], {}, 16_000),
        (["82"], {}, 16_000),
        (["AS"], {}, 13_600),
        (["62"], {"co_surg": "1"}, 62_500),
        (["62"], {"co_surg": "2"}, 62_500),
        (["62"], {"co_surg": "0"}, 100_000),
        (["50", "62"], {"bilat_surg": "1", "co_surg": "2"}, 93_750),
        (["50", "80", "AS", "62"], {"bilat_surg": "1", "co_surg": "1"}, 2_040),
    ],
)
def test_adjustment_factors(modifiers: list[str], row_overrides: dict[str, str], factor_e5: int) -> None:
    ref = reference([rvu_row("30000", 10.00, 0, 0, 0, conv_factor_e4=10_000, **row_overrides)])
    mods = {f"modifier_{i + 1}": m for i, m in enumerate(modifiers)}
    result = priced([claim()], [line(procedure_code="30000", units=3, charge_cents=999_999, **mods)], ref)
    assert result.get_column("adjustment_factor_e5").to_list() == [factor_e5]
    expected = (Decimal(1000) * 3 * Decimal(factor_e5) / 100_000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert result.get_column("allowed_cents").to_list() == [int(expected)]


@pytest.mark.parametrize(("modifier", "work"), [("26", 1.00), ("TC", 0.00), ("53", 0.50), (None, 2.00)])
def test_26_tc_53_price_from_their_own_rows(modifier: str | None, work: float) -> None:
    ref = reference(
        [
            rvu_row("70000", 2.00, 0, 0, 0, conv_factor_e4=10_000, pctc_ind="1"),
            rvu_row("70000", 1.00, 0, 0, 0, conv_factor_e4=10_000, modifier="26", pctc_ind="1"),
            rvu_row("70000", 0.00, 0, 0, 0, conv_factor_e4=10_000, modifier="TC", pctc_ind="1"),
            rvu_row("70000", 0.50, 0, 0, 0, conv_factor_e4=10_000, modifier="53", pctc_ind="1"),
        ]
    )
    result = priced([claim()], [line(procedure_code="70000", modifier_1="59", modifier_2=modifier)], ref)
    assert result.get_column("fee_schedule_cents").to_list() == [round(work * 100)]


@pytest.mark.parametrize("status", ["B", "I", "N", "X", "C"])
def test_non_payable_status_allows_zero_with_a_note(status: str) -> None:
    ref = reference([rvu_row("99214", 1.92, 2.00, 0.47, 0.14, status_code=status)])
    result = priced([claim()], [line(charge_cents=50_000)], ref)
    assert result.select("fee_schedule_cents", "adjustment_factor_e5", "allowed_cents", "pricing_note").row(0) == (
        13_561,
        100_000,
        0,
        f"STATUS_{status}",
    )


@pytest.mark.parametrize("status", ["A", "R", "T"])
def test_payable_status_has_an_empty_note(status: str) -> None:
    ref = reference([rvu_row("99214", 1.92, 2.00, 0.47, 0.14, status_code=status)])
    assert priced([claim()], [line(charge_cents=50_000)], ref).get_column("pricing_note").to_list() == [""]


def test_claim_totals_sum_the_lines() -> None:
    lines = [
        line(line_number=1, charge_cents=50_000),
        line(line_number=2, procedure_code="99213", charge_cents=5_000),
    ]
    result = price(claims_frame(claim(total_charge_cents=55_000)), lines_frame(*lines), reference(CMS_2026))
    assert result.claims.select("line_count", "total_charge_cents", "total_allowed_cents").row(0) == (
        2,
        55_000,
        18_561,
    )


def test_a_claim_without_lines_is_left_out_and_the_others_keep_their_totals() -> None:
    claims = claims_frame(claim(claim_id=1), claim(claim_id=2), claim(claim_id=3))
    lines = lines_frame(line(claim_id=1, charge_cents=50_000), line(claim_id=3, charge_cents=5_000))
    result = price(claims, lines, reference(CMS_2026))
    assert result.claims.select("claim_id", "line_count", "total_allowed_cents").rows() == [
        (1, 1, 13_561),
        (3, 1, 5_000),
    ]


def test_gpci_weights_each_component() -> None:
    ref = reference(CMS_2026, [gpci_row(pw=10_500, pe=9_000, mp=12_000)])
    result = priced([claim()], [line(charge_cents=50_000)], ref)
    exact = (
        Decimal("1.92") * Decimal("1.05") + Decimal("2.00") * Decimal("0.9") + Decimal("0.14") * Decimal("1.2")
    ) * Decimal("33.4009")
    assert result.get_column("fee_schedule_cents").to_list() == [
        int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    ]


@settings(max_examples=200, deadline=None)
@given(
    work=st.integers(0, 200_00),
    pe=st.integers(0, 200_00),
    mp=st.integers(0, 50_00),
    pw_gpci=st.integers(500, 2_000),
    pe_gpci=st.integers(500, 2_000),
    mp_gpci=st.integers(200, 3_000),
    cf=st.integers(10_0000, 99_9999),
    units=st.integers(1, 999),
)
def test_fee_and_allowed_match_exact_decimal_arithmetic(
    work: int, pe: int, mp: int, pw_gpci: int, pe_gpci: int, mp_gpci: int, cf: int, units: int
) -> None:
    ref = reference(
        [rvu_row("40000", work / 100, pe / 100, 0, mp / 100, conv_factor_e4=cf)],
        [gpci_row(pw=pw_gpci * 10, pe=pe_gpci * 10, mp=mp_gpci * 10)],
    )
    result = priced([claim()], [line(procedure_code="40000", units=units, charge_cents=10**11)], ref)
    d = Decimal
    fee = (
        (d(work) / 100 * d(pw_gpci) / 1000 + d(pe) / 100 * d(pe_gpci) / 1000 + d(mp) / 100 * d(mp_gpci) / 1000)
        * d(cf)
        / 10_000
    ).quantize(d("0.01"), rounding=ROUND_HALF_UP)
    assert result.get_column("fee_schedule_cents").to_list() == [int(fee * 100)]
    assert result.get_column("allowed_cents").to_list() == [int(fee * 100) * units]


def test_money_and_factor_text_is_exact() -> None:
    frame = pl.DataFrame({"cents": [0, 5, 1_234_567, -1_205], "factor": [100_000, 2_040, 150_000, 6_375]})
    assert frame.select(cents_text("cents")).to_series().to_list() == ["0.00", "0.05", "12345.67", "-12.05"]
    assert frame.select(scaled_text("factor", 5)).to_series().to_list() == [
        "1.00000",
        "0.02040",
        "1.50000",
        "0.06375",
    ]


@pytest.mark.parametrize("decimals", [2, 5])
def test_scaled_text_agrees_with_python_decimal_over_a_sweep(decimals: int) -> None:
    values = [*range(-30_000, 30_001), 10**12 - 1, -(10**12) + 1, 123_456_789_012]
    text = pl.DataFrame({"v": values}).select(scaled_text("v", decimals)).to_series().to_list()
    assert text == [f"{Decimal(v).scaleb(-decimals):.{decimals}f}" for v in values]


def test_blank_modifier_is_loaded_as_absent() -> None:
    """V06 treats a blank modifier as absent; the warehouse gets NULL, not a string too long for it."""
    lines = [line(modifier_1="\u3000\u3000\u3000", charge_cents=50_000)]
    result = price(claims_frame(claim(total_charge_cents=50_000)), lines_frame(*lines), reference(CMS_2026))
    frames = warehouse_frames(result, pl.DataFrame(schema=REJECTED), "run", datetime.now(UTC))
    assert frames["priced_claim_lines"].get_column("modifier_1").to_list() == [None]
