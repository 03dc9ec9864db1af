"""Reference releases and the two conversion factors (docs/spec.md §7), on literal frames: a line is
priced with the release in force on its service date and with the QP factor when its claim's NPI is
on the year's QP list; golden amounts to the cent."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from claims_etl import ReferenceFrames, price, validate
from claims_etl.schemas import GPCI, QP_NPIS, RELEASES, RVU
from tests.factories import (
    OTHER_VALID_NPI,
    RUN_DATE,
    VALID_NPI,
    claim,
    claims_frame,
    gpci_row,
    line,
    lines_frame,
    rvu_row,
)

QP_CF_2026 = 335_675  # 33.5675 x 10^4


def _releases(*rows: tuple[str, int, date]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RELEASES, orient="row")


def _reference(qp_npis: list[tuple[int, str]] = ()) -> ReferenceFrames:  # type: ignore[assignment]
    """99214 in 2026A (CMS's national RVUs) and in a 2026B revision with work RVU 2.00 from April 1."""
    rvu = [
        rvu_row("99214", 1.92, 2.00, 0.47, 0.14, release="2026A", qp_conv_factor_e4=QP_CF_2026),
        rvu_row("99214", 2.00, 2.00, 0.47, 0.14, release="2026B", qp_conv_factor_e4=QP_CF_2026),
    ]
    gpci = [gpci_row() | {"release": "2026A"}, gpci_row() | {"release": "2026B"}]
    return ReferenceFrames(
        rvu=pl.DataFrame(rvu, schema=RVU),
        gpci=pl.DataFrame(gpci, schema=GPCI),
        releases=_releases(("2026A", 2026, date(2026, 1, 1)), ("2026B", 2026, date(2026, 4, 1))),
        qp_npis=pl.DataFrame(list(qp_npis), schema=QP_NPIS, orient="row"),
    )


def _priced_lines(
    reference: ReferenceFrames, *claims: dict[str, object], lines: list[dict[str, object]]
) -> pl.DataFrame:
    checked = validate(claims_frame(*claims), lines_frame(*lines), reference, run_date=RUN_DATE)
    assert checked.rejected.is_empty(), checked.rejected.rows()
    return price(checked.accepted_claims, checked.accepted_lines, reference).lines


def test_each_line_is_priced_with_the_release_in_force_on_its_service_date() -> None:
    lines = _priced_lines(
        _reference(),
        claim(total_charge_cents=40_000, received_date=date(2026, 4, 20)),
        lines=[
            line(line_number=1, service_date=date(2026, 3, 31)),
            line(line_number=2, service_date=date(2026, 4, 1), modifier_1="25"),
        ],
    )
    # A: (1.92 + 2.00 + 0.14) x 33.4009 = 135.607654 -> 135.61; B: (2.00 + 2.00 + 0.14) x 33.4009 = 138.279726
    assert lines.select("line_number", "rvu_release", "cf_kind", "fee_schedule_cents", "allowed_cents").rows() == [
        (1, "2026A", "non_qp", 13_561, 13_561),
        (2, "2026B", "non_qp", 13_828, 13_828),
    ]


@pytest.mark.parametrize(
    ("rendering_npi", "qp_list", "cf_kind", "cents"),
    [
        (OTHER_VALID_NPI, [(2026, OTHER_VALID_NPI)], "qp", 13_628),  # 4.06 x 33.5675 = 136.28405
        (None, [(2026, VALID_NPI)], "qp", 13_628),  # no rendering NPI: the billing NPI is asked
        (OTHER_VALID_NPI, [(2026, VALID_NPI)], "non_qp", 13_561),  # the rendering NPI, not the billing one
        (OTHER_VALID_NPI, [(2025, OTHER_VALID_NPI)], "non_qp", 13_561),  # listed for another year
        (OTHER_VALID_NPI, [], "non_qp", 13_561),  # no QP list at all
    ],
)
def test_the_qp_conversion_factor_prices_listed_npis_of_the_service_year(
    rendering_npi: str | None, qp_list: list[tuple[int, str]], cf_kind: str, cents: int
) -> None:
    lines = _priced_lines(
        _reference(qp_list), claim(rendering_npi=rendering_npi), lines=[line(service_date=date(2026, 3, 31))]
    )
    assert lines.select("cf_kind", "fee_schedule_cents").row(0) == (cf_kind, cents)


def test_a_release_without_a_qp_factor_prices_listed_npis_with_the_non_qp_one() -> None:
    reference = _reference([(2026, VALID_NPI)])
    reference = ReferenceFrames(
        rvu=reference.rvu.with_columns(pl.lit(None, pl.Int64).alias("qp_conv_factor_e4")),
        gpci=reference.gpci,
        releases=reference.releases,
        qp_npis=reference.qp_npis,
    )
    lines = _priced_lines(reference, claim(), lines=[line(service_date=date(2026, 3, 31))])
    assert lines.select("cf_kind", "fee_schedule_cents").row(0) == ("non_qp", 13_561)


def test_a_service_date_before_the_years_first_release_has_no_fee_schedule_row() -> None:
    reference = _reference()
    only_b = ReferenceFrames(
        rvu=reference.rvu.filter(pl.col("release") == "2026B"),
        gpci=reference.gpci.filter(pl.col("release") == "2026B"),
        releases=reference.releases.filter(pl.col("release") == "2026B"),
    )
    checked = validate(
        claims_frame(claim()), lines_frame(line(service_date=date(2026, 3, 2))), only_b, run_date=RUN_DATE
    )
    assert checked.rejected.select("claim_id", "rule_ids").rows() == [(1, "V05,V14")]


def test_literal_frames_without_releases_are_one_release_a_year_from_january_first() -> None:
    reference = ReferenceFrames(
        rvu=pl.DataFrame([rvu_row("99214", 1.92, 2.0, 0.47, 0.14)], schema=RVU),
        gpci=pl.DataFrame([gpci_row()], schema=GPCI),
    )
    assert reference.releases.rows() == [("2026A", 2026, date(2026, 1, 1))]
    two_in_a_year = pl.DataFrame(
        [rvu_row("99214", 1.92, 2.0, 0.47, 0.14, release=label) for label in ("2026A", "2026B")], schema=RVU
    )
    with pytest.raises(ValueError, match="effective dates"):
        ReferenceFrames(rvu=two_in_a_year, gpci=pl.DataFrame([gpci_row()], schema=GPCI))
