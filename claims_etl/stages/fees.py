"""The exact integer arithmetic of a fee (docs/spec.md §4): RVUs, GPCIs and conversion factors are
integers x 10^4, money integer cents, adjustment factors integers x 10^5; and the width that keeps
every product of a frame exact (`exact_width`)."""

from __future__ import annotations

import polars as pl

from claims_etl.reference import ReferenceFrames

FACTOR_ONE = 100_000  # 1.0 at scale 10^5
BILATERAL = 150_000
HUNDRED = 100  # hundredths of a cent per cent (the diagnostic MPPR's amounts)
# (RVU x 10^4) x (GPCI x 10^4) x (CF x 10^4) is dollars x 10^12, i.e. cents x 10^10.
FEE_SCALE_TO_CENTS = 10**10


def round_half_up_div(numerator: pl.Expr, denominator: int) -> pl.Expr:
    """numerator / denominator rounded half up, for non-negative integer expressions."""
    return (numerator + denominator // 2) // denominator


# The QP conversion factor for a line whose claim's NPI is on its year's QP list, where the release
# has one; the PPRRVU file's (non-QP) factor otherwise (docs/spec.md §7).
PRICED_AS_QP = pl.col("qp_listed") & pl.col("qp_conv_factor_e4").is_not_null()


def cents_for(work: str, nonfac_pe: str, facility_pe: str, mp: str) -> pl.Expr:
    """(work x PW GPCI + PE x PE GPCI + MP x MP GPCI) x CF in cents, rounded half up (docs/spec.md §4.3),
    for the named RVU columns: the facility or non-facility PE by the line's setting, the QP or non-QP
    conversion factor by its claim's NPI."""
    pe_rvu = pl.when(pl.col("is_facility")).then(pl.col(facility_pe)).otherwise(pl.col(nonfac_pe))
    geographic = pl.col(work) * pl.col("pw_gpci_e4") + pe_rvu * pl.col("pe_gpci_e4") + pl.col(mp) * pl.col("mp_gpci_e4")
    conversion_factor = pl.when(PRICED_AS_QP).then(pl.col("qp_conv_factor_e4")).otherwise(pl.col("conv_factor_e4"))
    return round_half_up_div(geographic * conversion_factor, FEE_SCALE_TO_CENTS)


# Bounds of the exact integer arithmetic (docs/spec.md §4, issue 29): the largest product a line's price
# reaches is fee cents x 100 (hundredths of a cent, §4a) x units x the adjustment factor x 10^5, whose
# only factor above 1 is the bilateral 1.5; the fee itself is (RVU x GPCI, three of them) x CF at 10^12.
_INT64_MAX = 2**63 - 1
_INT128_MAX = 2**127 - 1
_LARGEST_FACTOR_E5 = BILATERAL
_RVU_COLUMNS = (
    "work_rvu_e4",
    "nonfac_pe_rvu_e4",
    "facility_pe_rvu_e4",
    "mp_rvu_e4",
    "opps_nonfac_pe_rvu_e4",
    "opps_facility_pe_rvu_e4",
    "opps_mp_rvu_e4",
)
_GPCI_COLUMNS = ("pw_gpci_e4", "pe_gpci_e4", "mp_gpci_e4")
_CF_COLUMNS = ("conv_factor_e4", "qp_conv_factor_e4")
_WIDENED = (*_RVU_COLUMNS[:4], *_GPCI_COLUMNS, *_CF_COLUMNS, "units")


def _largest(frame: pl.DataFrame, columns: tuple[str, ...]) -> int:
    value = frame.select(pl.max_horizontal(pl.col(columns).abs().max())).item()
    return 0 if value is None else int(value)


def _reference_bounds(reference: ReferenceFrames) -> pl.DataFrame:
    """The largest RVU, GPCI and conversion factor of the reference frames (x 10^4), once per frames."""

    def build() -> pl.DataFrame:
        rvu = _largest(reference.rvu, tuple(c for c in _RVU_COLUMNS if c in reference.rvu.columns))
        gpci, cf = _largest(reference.gpci, _GPCI_COLUMNS), _largest(reference.rvu, _CF_COLUMNS)
        return pl.DataFrame(
            {"rvu": [rvu], "gpci": [gpci], "cf": [cf]}, schema=dict.fromkeys(("rvu", "gpci", "cf"), pl.Int64)
        )

    return reference.derived("price.bounds", build)


def exact_width(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """`keyed`, its money inputs in 128-bit integers when this frame's largest product could pass int64
    (a payer's rules may allow huge unit counts, a hand-built reference huge RVUs): never a wrapped
    amount. The check is one maximum over the lines' units; the reference's maxima are computed once.
    Inputs beyond even 128 bits (or a fee beyond int64 cents) are refused with a ValueError."""
    rvu, gpci, cf = _reference_bounds(reference).row(0)
    fee_product = 3 * rvu * gpci * cf
    largest = (fee_product // FEE_SCALE_TO_CENTS + 1) * HUNDRED * _largest(keyed, ("units",)) * _LARGEST_FACTOR_E5
    if fee_product <= _INT64_MAX and largest <= _INT64_MAX:
        return keyed
    if fee_product // FEE_SCALE_TO_CENTS > _INT64_MAX or largest > _INT128_MAX:
        raise ValueError("RVUs, GPCIs, conversion factors or units too large to price exactly")
    return keyed.with_columns(pl.col(_WIDENED).cast(pl.Int128))
