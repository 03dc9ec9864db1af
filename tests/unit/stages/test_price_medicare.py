"""Golden tests for issue 28's pricing (docs/spec.md §4 steps 4a-4c, §5 V06): the OPPS imaging cap,
the diagnostic multiple procedure payment reduction with its PC/TC split, the notes for MULT PROC 3/5,
and 26/TC rows as CMS publishes them. Every expected amount is worked out by hand in its comment, from
small literal fee schedules of synthetic codes, and checked twice: against the engine
(`claims_etl.validate` then `claims_etl.price`) and against the row-at-a-time oracle
(benchmarks/row_at_a_time.py), which implements the same contract independently.

Two fee schedules: `AL`, the issue's Alabama-like locality (GPCI 1.000 / 0.869 / 0.575, CF 32.3465),
where the OPPS example of the issue is reproduced; and `FLAT` (GPCI 1.0, CF 1.0), where a fee is the sum
of its RVUs, its `26` row is its work RVU (PC) and the rest is its TC, so the MPPR arithmetic stays
readable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
import pytest

import claims_etl as ce
from benchmarks import row_at_a_time
from claims_etl import ReferenceFrames
from claims_etl.schemas import GPCI, RVU
from claims_etl.settings.rules_file import RulesConfig
from claims_etl.stages.keying import key_lines
from claims_etl.stages.price import price_keyed
from tests.factories import (
    OTHER_VALID_NPI,
    RUN_DATE,
    VALID_NPI,
    claim,
    claims_frame,
    gpci_row,
    line,
    lines_frame,
    reference,
    rvu_e4_row,
    rvu_row,
)

DAY, NEXT_DAY = date(2026, 3, 2), date(2026, 3, 3)
AL_CF = 323_465  # 32.3465 x 10^4


def rvu(hcpcs: str, modifier: str, work: int, pe_nonfac: int, pe_fac: int, mp: int, **overrides: Any) -> dict[str, Any]:
    """An RVU row of 2026 (`rvu_e4_row`), professional and technical components apart (PC/TC 1) unless overridden."""
    return rvu_e4_row(hcpcs, modifier, work, pe_nonfac, pe_fac, mp, **({"pctc_ind": "1"} | overrides))


def gpci(pw: int, pe: int, mp: int) -> dict[str, Any]:
    return gpci_row(pw=pw, pe=pe, mp=mp)


def split_code(hcpcs: str, pc: int, tc: int, **overrides: Any) -> list[dict[str, Any]]:
    """A FLAT code with its global, 26 and TC rows: the PC as work RVU, the TC as PE RVU (x 10^4)."""
    return [
        rvu(hcpcs, "", pc, tc, tc, 0, **overrides),
        rvu(hcpcs, "26", pc, 0, 0, 0, **overrides),
        rvu(hcpcs, "TC", 0, tc, tc, 0, **overrides),
    ]


AL_GPCI = gpci(10_000, 8_690, 5_750)
AL_RVU = [
    # Capped imaging, MULT PROC 4: global 1.75 / 7.00 (facility 2.00) / 0.12, OPPS PE 6.11 (facility 1.50),
    # OPPS MP 0.11; its 26 row 1.75 / 0.60 / 0.10 with OPPS columns 0, as CMS's 26 rows have.
    rvu(
        "R0001",
        "",
        17_500,
        70_000,
        20_000,
        1_200,
        conv_factor_e4=AL_CF,
        mult_proc="4",
        opps_nonfac_pe_rvu_e4=61_100,
        opps_facility_pe_rvu_e4=15_000,
        opps_mp_rvu_e4=1_100,
    ),
    rvu("R0001", "26", 17_500, 6_000, 6_000, 1_000, conv_factor_e4=AL_CF, mult_proc="4"),
    # The same PFS amount, an OPPS amount above it: OPPS PE 7.20, OPPS MP 0.12.
    rvu(
        "R0002",
        "",
        17_500,
        70_000,
        20_000,
        1_200,
        conv_factor_e4=AL_CF,
        mult_proc="4",
        opps_nonfac_pe_rvu_e4=72_000,
        opps_facility_pe_rvu_e4=72_000,
        opps_mp_rvu_e4=1_200,
    ),
    # A larger imaging service, not capped: global 3.00 / 10.00 / 0.20, 26 row 3.00 / 1.00 / 0.15.
    rvu("R0003", "", 30_000, 100_000, 100_000, 2_000, conv_factor_e4=AL_CF, mult_proc="4"),
    rvu("R0003", "26", 30_000, 10_000, 10_000, 1_500, conv_factor_e4=AL_CF, mult_proc="4"),
    # A lab interpretation code (PCTC IND 6): a global row and a 26 row, no TC row.
    rvu("L0001", "", 8_000, 15_000, 3_000, 500, conv_factor_e4=AL_CF, pctc_ind="6"),
    rvu("L0001", "26", 8_000, 3_000, 3_000, 500, conv_factor_e4=AL_CF, pctc_ind="6"),
]
FLAT_GPCI = gpci(10_000, 10_000, 10_000)
FLAT_RVU = [
    *split_code("D0001", 200_100, 800_000, mult_proc="4"),  # fee 100.01 = PC 20.01 + TC 80.00
    *split_code("D0002", 300_300, 300_000, mult_proc="4"),  # fee 60.03 = PC 30.03 + TC 30.00
    *split_code("D0003", 100_300, 300_100, mult_proc="4"),  # fee 40.04 = PC 10.03 + TC 30.01
    *split_code("D0004", 200_100, 800_000, mult_proc="4"),  # D0001's twin, for ties
    *split_code("D0005", 50_000, 900_000, mult_proc="4"),  # fee 95.00 = PC 5.00 + TC 90.00
    *split_code("D0009", 500_000, 2_000_000, mult_proc="4", status_code="I"),  # 250.00, not payable
    *split_code("E0001", 200_100, 800_000, mult_proc="6"),  # 100.01 = 20.01 + 80.00
    *split_code("E0002", 100_300, 300_000, mult_proc="6"),  # 40.03 = 10.03 + 30.00
    *split_code("F0001", 200_100, 800_000, mult_proc="7"),  # 100.01 = 20.01 + 80.00
    *split_code("F0002", 100_300, 300_100, mult_proc="7"),  # 40.04 = 10.03 + 30.01
    rvu("N0031", "", 100_000, 0, 0, 0, mult_proc="3"),  # 10.00
    rvu("N0032", "", 120_000, 0, 0, 0, mult_proc="3"),  # 12.00
    rvu("N0033", "", 140_000, 0, 0, 0, mult_proc="3"),  # 14.00
    rvu("N0051", "", 50_000, 0, 0, 0, mult_proc="5"),  # 5.00
    rvu("N0052", "", 60_000, 0, 0, 0, mult_proc="5"),  # 6.00
]


def schedule(rvu_rows: list[dict[str, Any]], gpci: dict[str, Any], qp: bool = False) -> ce.ReferenceFrames:
    return reference(rvu_rows, [gpci], qp_npis=(VALID_NPI,) if qp else ())


AL = schedule(AL_RVU, AL_GPCI)
# The same schedule with a QP conversion factor of 33.0000 on every row, and the claims' NPI on the list.
AL_QP = schedule([row | {"qp_conv_factor_e4": 330_000} for row in AL_RVU], AL_GPCI, qp=True)
FLAT = schedule(FLAT_RVU, FLAT_GPCI)

Line = tuple[int, int, int, int, str]  # claim_id, line_number, fee cents, allowed cents, pricing_note


@dataclass(frozen=True)
class Case:
    """Claims (each a place of service and its lines), the fee schedule, and what pricing must give."""

    ref: ce.ReferenceFrames
    claims: dict[int, tuple[str, list[dict[str, Any]]]]
    lines: list[Line]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)  # further priced-line columns checked


def ln(number: int, code: str, charge: int = 100_000, **overrides: Any) -> dict[str, Any]:
    """A line of one unit on DAY, charged $1,000.00 unless given (cents), so no charge cap unless asked."""
    return line(line_number=number, procedure_code=code, charge_cents=charge) | overrides


CASES = [
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "R0001", 50_000)])},
            # PFS: (1.75*1.000 + 7.00*0.869 + 0.12*0.575) * 32.3465 = 7.902 * 32.3465 = 255.602043 -> 255.60
            # OPPS: (1.75*1.000 + 6.11*0.869 + 0.11*0.575) * 32.3465 = 7.12284 * 32.3465 = 230.39894 -> 230.40
            [(1, 1, 25_560, 23_040, "OPPS_CAP")],
        ),
        id="opps-cap-lower-pays-opps",
    ),
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "R0002", 50_000)])},
            # PFS 255.60 as above; OPPS: (1.75 + 7.20*0.869 + 0.12*0.575) * 32.3465 = 8.0758 * 32.3465
            # = 261.22386 -> 261.22, higher: the PFS amount is paid, no note.
            [(1, 1, 25_560, 25_560, "")],
        ),
        id="opps-cap-higher-pays-pfs",
    ),
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "R0001", 50_000)]), 2: ("22", [ln(1, "R0001", 50_000)])},
            [
                (1, 1, 25_560, 23_040, "OPPS_CAP"),  # non-facility: as in the first case
                # facility PFS: (1.75 + 2.00*0.869 + 0.12*0.575) * 32.3465 = 3.557 * 32.3465 = 115.05650 -> 115.06
                # facility OPPS: (1.75 + 1.50*0.869 + 0.11*0.575) * 32.3465 = 3.11675 * 32.3465 = 100.81595
                # -> 100.82 (the non-facility OPPS PE would give 230.40 and no cap)
                (2, 1, 11_506, 10_082, "OPPS_CAP"),
            ],
            columns={"facility": [0, 1]},
        ),
        id="opps-cap-facility-vs-non-facility",
    ),
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "R0001", 50_000, modifier_1="26")])},
            # the 26 row, OPPS columns 0: (1.75 + 0.60*0.869 + 0.10*0.575) * 32.3465 = 2.3289 * 32.3465
            # = 75.33177 -> 75.33, never capped
            [(1, 1, 7_533, 7_533, "")],
        ),
        id="opps-cap-never-on-a-26-row",
    ),
    pytest.param(
        Case(
            AL_QP,
            {1: ("11", [ln(1, "R0001", 50_000)])},
            # QP CF 33.0000 for both amounts: PFS 7.902 * 33 = 260.766 -> 260.77;
            # OPPS 7.12284 * 33 = 235.05372 -> 235.05 (with the non-QP CF it would be 230.40)
            [(1, 1, 26_077, 23_505, "OPPS_CAP")],
            columns={"cf_kind": ["qp"]},
        ),
        id="opps-cap-with-the-qp-factor",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "D0003")])},
            [
                # top TC (80.00 > 30.01) and top PC (20.01 > 10.03): paid in full, no reduced unit
                (1, 1, 10_001, 10_001, ""),
                # TC 30.01 * 0.50 + PC 10.03 * 0.95 = 15.005 + 9.5285 = 24.5335 -> 24.53
                # (rounding each part first would give 15.01 + 9.53 = 24.54)
                (1, 2, 4_004, 2_453, "MPPR_DI"),
            ],
        ),
        id="mppr4-two-globals-tc-50-pc-95",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "D0002")])},
            [
                # top TC (80.00 > 30.00), not top PC (20.01 < 30.03): 80.00 + 20.01 * 0.95 = 99.0095 -> 99.01
                (1, 1, 10_001, 9_901, "MPPR_DI"),
                # top PC, not top TC: 30.00 * 0.50 + 30.03 = 45.03
                (1, 2, 6_003, 4_503, "MPPR_DI"),
            ],
        ),
        id="mppr4-pc-and-tc-ranked-apart",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "D0005", modifier_1="TC")])},
            [
                # the TC line of another code has the higher TC (90.00 > 80.00); the global keeps the top
                # PC (20.01 > 0): 80.00 * 0.50 + 20.01 = 60.01
                (1, 1, 10_001, 6_001, "MPPR_DI"),
                (1, 2, 9_000, 9_000, ""),  # the TC row's fee: PE 90.00 alone
            ],
        ),
        id="mppr4-a-global-and-a-tc-line-of-another-code",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001", units=3)])},
            # first unit 100.01; units 2 and 3: 80.00 * 0.50 + 20.01 * 0.95 = 40.00 + 19.0095 = 59.0095 each
            # 100.01 + 2 * 59.0095 = 218.029 -> 218.03
            [(1, 1, 10_001, 21_803, "MPPR_DI")],
        ),
        id="mppr4-units-of-one-line-are-procedures",
    ),
    pytest.param(
        Case(
            FLAT,
            # twins (same TC, same PC), given line 2 first: line 1 is the top line
            {1: ("11", [ln(2, "D0001"), ln(1, "D0004")])},
            [(1, 1, 10_001, 10_001, ""), (1, 2, 10_001, 5_901, "MPPR_DI")],  # 40.00 + 19.0095 -> 59.01
        ),
        id="mppr4-tie-goes-to-the-lowest-line-number",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "D0003", service_date=NEXT_DAY)])},
            [(1, 1, 10_001, 10_001, ""), (1, 2, 4_004, 4_004, "")],
        ),
        id="mppr-different-dates-not-grouped",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "E0002")])},  # MULT PROC 4 and 6 on one date
            [(1, 1, 10_001, 10_001, ""), (1, 2, 4_003, 4_003, "")],
        ),
        id="mppr-different-indicators-not-grouped",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "E0001"), ln(2, "E0002")])},
            # TC 30.00 * 0.75 + PC 10.03 (not reduced under 6) = 22.50 + 10.03 = 32.53
            [(1, 1, 10_001, 10_001, ""), (1, 2, 4_003, 3_253, "MPPR_DC")],
        ),
        id="mppr6-tc-75-pc-untouched",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "F0001"), ln(2, "F0002")])},
            # TC 30.01 * 0.80 + PC 10.03 = 24.008 + 10.03 = 34.038 -> 34.04
            [(1, 1, 10_001, 10_001, ""), (1, 2, 4_004, 3_404, "MPPR_DO")],
        ),
        id="mppr7-tc-80",
    ),
    pytest.param(
        Case(
            AL,
            {
                1: ("11", [ln(1, "R0001", units=2)]),
                2: ("11", [ln(1, "R0003"), ln(2, "R0001")]),
            },
            [
                # R0001: fee 255.60, PC = its 26 row 75.33, TC = 180.27; OPPS 230.40.
                # unit 1: 255.60, capped at 230.40; unit 2: 180.27 * 0.50 + 75.33 * 0.95 = 90.135 + 71.5635
                # = 161.6985, under the cap; 230.40 + 161.6985 = 392.0985 -> 392.10
                (1, 1, 25_560, 39_210, "MPPR_DI+OPPS_CAP"),
                # R0003: (3.00 + 10.00*0.869 + 0.20*0.575) * 32.3465 = 11.805 * 32.3465 = 381.85043 -> 381.85;
                # its 26 row (3.00 + 1.00*0.869 + 0.15*0.575) * 32.3465 = 3.95525 * 32.3465 = 127.93849
                # -> 127.94, TC 253.91: the top line for TC and PC, paid in full
                (2, 1, 38_185, 38_185, ""),
                # R0001 reduced first: 161.6985 -> 161.70, then under the cap of 230.40: no OPPS_CAP
                (2, 2, 25_560, 16_170, "MPPR_DI"),
            ],
        ),
        id="mppr-then-opps-cap-per-unit",
    ),
    pytest.param(
        Case(
            FLAT,
            # D0009 (status I, fee 250.00) would be the top line; it takes no part, D0001 is paid in full
            {1: ("11", [ln(1, "D0009"), ln(2, "D0001")])},
            [(1, 1, 25_000, 0, "STATUS_I"), (1, 2, 10_001, 10_001, "")],
        ),
        id="mppr-leaves-out-a-non-payable-line",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001", 9_000), ln(2, "D0003", 2_000)])},
            # line 1: min(charge 90.00, 100.01); line 2: min(charge 20.00, 24.5335 -> 24.53), still reduced
            [(1, 1, 10_001, 9_000, ""), (1, 2, 4_004, 2_000, "MPPR_DI")],
        ),
        id="mppr-then-the-charge-cap",
    ),
    pytest.param(
        Case(
            FLAT,
            {1: ("11", [ln(1, "D0001"), ln(2, "D0003", modifier_1="80")])},
            # assistant at surgery (0.16) on the exact reduced amount, rounded once:
            # 24.5335 * 0.16 = 3.92536 -> 3.93 (rounding 24.5335 first: 24.53 * 0.16 = 3.9248 -> 3.92)
            [(1, 1, 10_001, 10_001, ""), (1, 2, 4_004, 393, "MPPR_DI")],
            columns={"adjustment_factor_e5": [100_000, 16_000]},
        ),
        id="mppr-exact-amount-times-the-factor-rounded-once",
    ),
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "L0001", modifier_1="26")]), 2: ("11", [ln(1, "L0001", modifier_1="TC")])},
            # the 26 row, not the global: (0.80 + 0.30*0.869 + 0.05*0.575) * 32.3465 = 1.08945 * 32.3465
            # = 35.23989 -> 35.24 (the global row would give 2.13225 * 32.3465 = 68.97 at this POS)
            [(1, 1, 3_524, 3_524, "")],
            rejected=[(2, "V05,V06")],  # no TC row: no row to price it with (V05) and no TC to bill (V06)
        ),
        id="v06-a-26-row-without-a-tc-row",
    ),
    pytest.param(
        Case(
            AL,
            {1: ("11", [ln(1, "R0001", modifier_1="26", modifier_2="TC")])},
            [],
            rejected=[(1, "V06")],  # priced with the 26 row, which exists: V06 alone
        ),
        id="v06-26-and-tc-together",
    ),
    pytest.param(
        Case(
            FLAT,
            {
                1: (
                    "11",
                    [
                        ln(1, "N0031"),
                        ln(2, "N0032"),
                        ln(3, "N0033", service_date=NEXT_DAY),  # alone on its date: no note
                        ln(4, "N0051"),
                        ln(5, "N0052"),
                    ],
                )
            },
            # not reduced (4c): each line its fee
            [
                (1, 1, 1_000, 1_000, "NO_MPPR_3"),
                (1, 2, 1_200, 1_200, "NO_MPPR_3"),
                (1, 3, 1_400, 1_400, ""),
                (1, 4, 500, 500, "NO_MPPR_5"),
                (1, 5, 600, 600, "NO_MPPR_5"),
            ],
        ),
        id="no-mppr-3-and-5-notes",
    ),
]


def frames(case: Case) -> tuple[pl.DataFrame, pl.DataFrame]:
    claims, lines = [], []
    for claim_id, (pos, claim_lines) in case.claims.items():
        charge = sum(line["charge_cents"] for line in claim_lines)
        claims.append(claim(claim_id=claim_id, place_of_service=pos, total_charge_cents=charge))
        lines += [line | {"claim_id": claim_id} for line in claim_lines]
    return claims_frame(*claims), lines_frame(*lines)


PRICED = ["claim_id", "line_number", "fee_schedule_cents", "allowed_cents", "pricing_note"]


def _assert_as_worked_out(case: Case, lines: pl.DataFrame, rejected: pl.DataFrame) -> None:
    assert rejected.select("claim_id", "rule_ids").sort("claim_id").rows() == case.rejected
    lines = lines.sort("claim_id", "line_number")
    assert lines.select(PRICED).rows() == case.lines
    for column, values in case.columns.items():
        assert lines.get_column(column).to_list() == values, column


@pytest.mark.parametrize("case", CASES)
def test_the_engine_prices_as_worked_out_by_hand(case: Case) -> None:
    claims, lines = frames(case)
    checked = ce.validate(claims, lines, case.ref, run_date=RUN_DATE)
    priced = ce.price(checked.accepted_claims, checked.accepted_lines, case.ref)
    _assert_as_worked_out(case, priced.lines, checked.rejected)
    totals = priced.claims.select("claim_id", "total_allowed_cents").rows()
    assert totals == priced.lines.group_by("claim_id").agg(pl.col("allowed_cents").sum()).sort("claim_id").rows()


@pytest.mark.parametrize("case", CASES)
def test_the_oracle_prices_as_worked_out_by_hand(case: Case) -> None:
    claims, lines = frames(case)
    checked = row_at_a_time.check_frames(claims, lines, case.ref, run_date=RUN_DATE)
    _assert_as_worked_out(case, checked.lines, checked.rejected)


# Every code above in one schedule at the AL locality, with a QP factor: random claims over it reach each
# rule together (groups of mixed modifiers, units, dates, settings, caps and charges).
MIXED = schedule([row | {"qp_conv_factor_e4": 330_000} for row in AL_RVU + FLAT_RVU], AL_GPCI, qp=True)
CODES = sorted({row["hcpcs"] for row in AL_RVU + FLAT_RVU})


def random_claims(seed: int, count: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = random.Random(seed)
    claims, lines = [], []
    for claim_id in range(1, count + 1):
        claim_lines = [
            line(
                claim_id=claim_id,
                line_number=number,
                procedure_code=rng.choice(CODES),
                modifier_1=rng.choice([None, None, None, "26", "TC", "53", "80", "50"]),
                service_date=rng.choice([DAY, DAY, NEXT_DAY]),
                units=rng.choice([1, 1, 1, 2, 3]),
                charge_cents=rng.choice([2_000, 10_000, 100_000]),
                place_of_service=rng.choice([None, None, "22"]),
            )
            for number in range(1, rng.randint(1, 6) + 1)
        ]
        # half the claims on the QP list's NPI, half not
        npi = VALID_NPI if claim_id % 2 else OTHER_VALID_NPI
        charge = sum(line["charge_cents"] for line in claim_lines)
        claims.append(claim(claim_id=claim_id, billing_npi=npi, total_charge_cents=charge))
        lines += claim_lines
    return claims_frame(*claims), lines_frame(*lines)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_oracle_agrees_with_the_engine_on_random_claims(seed: int) -> None:
    claims, lines = random_claims(seed, 300)
    checked = ce.validate(claims, lines, MIXED, run_date=RUN_DATE)
    priced = ce.price(checked.accepted_claims, checked.accepted_lines, MIXED)
    oracle = row_at_a_time.check_frames(claims, lines, MIXED, run_date=RUN_DATE)
    assert oracle.rejected.rows() == checked.rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    columns = list(row_at_a_time.PRICED_LINE_COLUMNS)
    assert oracle.lines.rows() == priced.lines.select(columns).rows()
    # the draw reaches the new rules, not only ordinary lines
    notes = set(oracle.lines.get_column("pricing_note"))
    assert {"MPPR_DI", "MPPR_DC", "MPPR_DO", "OPPS_CAP", "MPPR_DI+OPPS_CAP", "NO_MPPR_3"} <= notes


# ---------------------------------------------------------------- exact money never wraps (issue 29, item 5)


def _huge_units_frames() -> tuple[pl.DataFrame, pl.DataFrame, ReferenceFrames]:
    """An imaging code at CF 33.4009, GPCI 1.0: fee (1.92 + 2.00 + 0.14) x 33.4009 = 135.61, OPPS amount
    (1.92 + 1.00 + 0.14) x 33.4009 = 102.21; a line of 981,261,454 units (a payer's rules may allow them)."""
    imaging = {"mult_proc": "4", "opps_nonfac_pe_rvu_e4": 10_000, "opps_mp_rvu_e4": 1_400}
    rvu = pl.DataFrame(
        [rvu_row("R0001", 1.92, 2.00, 0.47, 0.14, **imaging), rvu_row("R0002", 1.92, 2.00, 0.47, 0.14)], schema=RVU
    )
    gpci = pl.DataFrame([gpci_row()], schema=GPCI)
    huge = {"units": 981_261_454, "charge_cents": 999_999_999_999}
    lines = lines_frame(
        line(line_number=1, procedure_code="R0001", **huge),
        line(line_number=2, procedure_code="R0002", **huge),
        line(line_number=3, procedure_code="R0002", units=7, charge_cents=100_000, service_date=date(2026, 3, 3)),
    )
    total = int(lines.get_column("charge_cents").sum())
    return claims_frame(claim(total_charge_cents=total)), lines, ReferenceFrames(rvu=rvu, gpci=gpci)


def test_huge_unit_counts_are_priced_exactly_never_wrapped() -> None:
    claims, lines, reference = _huge_units_frames()
    no_unit_limit = RulesConfig.model_validate({"V07": {"enabled": False}})
    checked = ce.validate(claims, lines, reference, run_date=RUN_DATE, rules=no_unit_limit)
    assert checked.rejected.is_empty()
    priced = ce.price(checked.accepted_claims, checked.accepted_lines, reference).lines
    # 981,261,454 x 135.61 (or x 102.21 capped) is about $10^11: both lines stop at their charge,
    # $9,999,999,999.99, where int64 cents x units x 10^5 wrapped to -999,996.36 before. Line 3:
    # 7 x 135.61 = 949.27, within its charge of 1,000.00. Units after the first are further imaging
    # procedures (MPPR).
    assert priced.select("line_number", "allowed_cents", "pricing_note").rows() == [
        (1, 999_999_999_999, "MPPR_DI+OPPS_CAP"),
        (2, 999_999_999_999, ""),
        (3, 94_927, ""),
    ]
    oracle = row_at_a_time.check_frames(claims, lines, reference, run_date=RUN_DATE, config=no_unit_limit)
    assert (
        oracle.lines.select("line_number", "allowed_cents", "pricing_note").rows()
        == priced.select("line_number", "allowed_cents", "pricing_note").rows()
    )


def test_reference_numbers_beyond_exact_arithmetic_are_refused() -> None:
    claims, lines, reference = _huge_units_frames()
    # (2^62 x 2^62) x CF is beyond 128 bits: refused, not wrapped.
    huge = pl.lit(2**62, pl.Int64)
    absurd = ReferenceFrames(
        rvu=reference.rvu.with_columns(huge.alias("work_rvu_e4")),
        gpci=reference.gpci.with_columns(huge.alias("pw_gpci_e4")),
    )
    with pytest.raises(ValueError, match="too large to price exactly"):
        ce.price(claims, lines, absurd)


def test_lines_keyed_against_other_reference_frames_are_refused() -> None:
    """Keyed lines name the RVU row §4a-4c read by its position in the frames they were keyed against:
    priced with the same rows in another order, they would read another code's row; refused instead."""
    claims, lines, reference = _huge_units_frames()
    keyed = key_lines(lines, claims, reference)
    reordered = ReferenceFrames(rvu=reference.rvu.reverse(), gpci=reference.gpci)
    with pytest.raises(ValueError, match="key them again"):
        price_keyed(claims, keyed, reordered)
    assert price_keyed(claims, keyed, reference).lines.height == 3
