"""Price stage (pure): the Medicare Physician Fee Schedule, docs/spec.md §4, in exact integers.

Scales: RVUs, GPCIs and the conversion factor are integers x 10^4, money is integer cents,
adjustment factors are integers x 10^5. Every factor the contract names (1.5, 0.16, 0.136, 0.625,
0.5) has a denominator dividing 2^5 x 5^5 = 10^5, and so has any product of them: x 10^5 holds every
adjustment factor exactly, and each multiplication by one divides evenly by 10^5. The diagnostic
MPPR's shares (50%, 75%, 80%, 95%) are whole percents of whole cents: amounts it touches are kept in
hundredths of a cent (`*_e2` cents) until the allowed amount is rounded, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.schemas import CLAIMS, LINES, PRICED_CLAIMS, PRICED_LINES, conform
from claims_etl.stages.keying import (
    DIAGNOSTIC_MPPR_KINDS,
    DIAGNOSTIC_NOTES,
    FACILITY_POS,
    MODIFIER_BITS,
    NOT_APPLIED_NOTES,
    NOTE_NAMES,
    has_modifier,
    key_lines,
    reduction_rows,
)
from claims_etl.stages.rules import facility_pos
from claims_etl.stages.rules_config import RulesConfig

FACTOR_ONE = 100_000  # 1.0 at scale 10^5
BILATERAL = 150_000
ASSISTANT = 16_000
ASSISTANT_AS = 13_600
CO_SURGEON = 62_500
SECONDARY_PROCEDURE = 50_000
# (RVU x 10^4) x (GPCI x 10^4) x (CF x 10^4) is dollars x 10^12, i.e. cents x 10^10.
_FEE_SCALE_TO_CENTS = 10**10


def round_half_up_div(numerator: pl.Expr, denominator: int) -> pl.Expr:
    """numerator / denominator rounded half up, for non-negative integer expressions."""
    return (numerator + denominator // 2) // denominator


def _times(factor: pl.Expr, multiplier: int, applies: pl.Expr) -> pl.Expr:
    return pl.when(applies).then(factor * multiplier // FACTOR_ONE).otherwise(factor)


# The QP conversion factor for a line whose claim's NPI is on its year's QP list, where the release
# has one; the PPRRVU file's (non-QP) factor otherwise (docs/spec.md §7).
_PRICED_AS_QP = pl.col("qp_listed") & pl.col("qp_conv_factor_e4").is_not_null()


def _cents_for(work: str, nonfac_pe: str, facility_pe: str, mp: str) -> pl.Expr:
    """(work x PW GPCI + PE x PE GPCI + MP x MP GPCI) x CF in cents, rounded half up (docs/spec.md §4.3),
    for the named RVU columns: the facility or non-facility PE by the line's setting, the QP or non-QP
    conversion factor by its claim's NPI."""
    pe_rvu = pl.when(pl.col("is_facility")).then(pl.col(facility_pe)).otherwise(pl.col(nonfac_pe))
    geographic = pl.col(work) * pl.col("pw_gpci_e4") + pe_rvu * pl.col("pe_gpci_e4") + pl.col(mp) * pl.col("mp_gpci_e4")
    conversion_factor = pl.when(_PRICED_AS_QP).then(pl.col("qp_conv_factor_e4")).otherwise(pl.col("conv_factor_e4"))
    return round_half_up_div(geographic * conversion_factor, _FEE_SCALE_TO_CENTS)


def _fee_schedule_cents() -> pl.Expr:
    return _cents_for("work_rvu_e4", "nonfac_pe_rvu_e4", "facility_pe_rvu_e4", "mp_rvu_e4")


def _opps_cents() -> pl.Expr:
    """The OPPS amount of a unit (§4b): the same formula with the PE and MP RVUs CMS uses for the OPPS
    payment amount; null where the row is not capped."""
    return _cents_for("work_rvu_e4", "opps_nonfac_pe_rvu_e4", "opps_facility_pe_rvu_e4", "opps_mp_rvu_e4")


def _professional_cents() -> pl.Expr:
    """A unit's professional part PC (§4a): all of a 26 line, none of a TC line, and of any other line
    the code's 26 row priced for this line (0 without one), never more than the line's fee."""
    fee, bit = pl.col("fee_schedule_cents"), pl.col("pricing_modifier_bit")
    global_pc = _cents_for("pc_work_rvu_e4", "pc_nonfac_pe_rvu_e4", "pc_facility_pe_rvu_e4", "pc_mp_rvu_e4")
    return (
        pl.when(bit == MODIFIER_BITS["26"])
        .then(fee)
        .when(bit == MODIFIER_BITS["TC"])
        .then(0)
        .otherwise(pl.min_horizontal(global_pc.fill_null(0), fee))
    )


def _factor_before_multiple_procedure() -> pl.Expr:
    factor = pl.lit(FACTOR_ONE, dtype=pl.Int64)
    factor = _times(factor, BILATERAL, has_modifier("50") & pl.col("bilateral_surgery"))
    factor = _times(factor, ASSISTANT, has_modifier("80", "81", "82"))
    factor = _times(factor, ASSISTANT_AS, has_modifier("AS"))
    return _times(factor, CO_SURGEON, has_modifier("62") & pl.col("co_surgery"))


_SAME_DAY = ("claim_id", "service_date")
_MPPR_GROUP = [*_SAME_DAY, "multiple_procedure_kind"]
# docs/spec.md §4a: per diagnostic MULT PROC, the percent of a further unit's TC and PC that is paid.
_TC_PAID_PERCENT = {4: 50, 6: 75, 7: 80}
_PC_PAID_PERCENT = {4: 95}
_HUNDRED = 100
_MPPR_SUBJECT = pl.col("multiple_procedure")


def _secondary_procedure_rows(lines: pl.DataFrame) -> pl.Series:
    """Positions of the lines the multiple procedure rule makes secondary: among a claim's MULT PROC 2
    lines on one date, all but the line with the highest rank value (fee x units x the factors before
    the multiple procedure one; ties: lowest line_number). Only the subject lines (a third of the
    seeded ones) are sorted by day, rank down and line up: each day's first is its top line. One sort
    of those costs less than two windows over claim and date (benchmarks/LOG.md)."""
    rank = pl.col("fee_schedule_cents") * pl.col("units") * pl.col("pre_mppr_e5")
    subject = lines.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
        *_SAME_DAY,
        "line_number",
        rank.alias("rank"),
        _MPPR_SUBJECT.alias("subject"),
    ).filter("subject")
    by_day_best_first = subject.sort([*_SAME_DAY, "rank", "line_number"], descending=[False, False, True, False])
    new_day = pl.any_horizontal(pl.col(key).ne_missing(pl.col(key).shift()) for key in _SAME_DAY)
    return by_day_best_first.filter(~new_day).get_column("row").sort()  # scatter takes them in order


def _group_top(subject: pl.Expr, rank: pl.Expr) -> pl.Expr:
    """True on the `subject` line with the highest `rank` in its §4a group (claim, date, indicator),
    ties to the lowest line_number: the rank and the line number packed into one key, so one window
    maximum finds it (line numbers are smallints, 2^16 values; ranks in cents stay below 2^47, far above
    any fee `_exact_width` leaves in int64)."""
    key = pl.when(subject).then(rank * (1 << 16) - pl.col("line_number"))
    return (key == key.max().over(_MPPR_GROUP)).fill_null(False)


def _subjects() -> tuple[pl.Expr, pl.Expr]:
    """The lines ranked for the top TC and the top PC (§4a): payable diagnostic lines with that part."""
    diagnostic = pl.col("multiple_procedure_kind").is_in(DIAGNOSTIC_MPPR_KINDS) & pl.col("payable")
    tc, pc = pl.col("fee_schedule_cents") - pl.col("professional_cents"), pl.col("professional_cents")
    return diagnostic & (tc > 0), diagnostic & (pc > 0)


def _group_flags_in_windows() -> list[pl.Expr]:
    """`top_tc`, `top_pc` (the line keeps its first unit's TC/PC in full, §4a) and `not_applied` (a
    MULT PROC 3 or 5 line sharing its claim and date with another of its indicator, §4c), by windows
    over the groups."""
    subject_tc, subject_pc = _subjects()
    tc, pc = pl.col("fee_schedule_cents") - pl.col("professional_cents"), pl.col("professional_cents")
    not_applied = pl.col("multiple_procedure_kind").is_in(NOT_APPLIED_NOTES) & (pl.len().over(_MPPR_GROUP) > 1)
    return [
        _group_top(subject_tc, tc).alias("top_tc"),
        _group_top(subject_pc, pc).alias("top_pc"),
        not_applied.alias("not_applied"),
    ]


_GROUP_FLAGS = ("top_tc", "top_pc", "not_applied")


def _with_group_flags(lines: pl.DataFrame) -> pl.DataFrame:
    """`_group_flags_in_windows`, whose windows are evaluated only on the lines that share their claim
    with another: a line alone on its claim is the top of its own group and shares its date with none
    (most lines these rules read are; a window per flag over all of them costs more than the rest)."""
    subject_tc, subject_pc = _subjects()
    shared = pl.col("claim_id").is_duplicated()
    # `not_applied` marks the shared lines until the windows below give their real flags.
    flagged = lines.with_columns(
        (subject_tc & ~shared).alias("top_tc"), (subject_pc & ~shared).alias("top_pc"), shared.alias("not_applied")
    )
    rows = flagged.select(pl.arg_where(pl.col("not_applied"))).to_series()
    if rows.is_empty():
        return flagged
    grouped = flagged[rows].select(_group_flags_in_windows())
    return flagged.with_columns(
        flagged.get_column(flag).scatter(rows, grouped.get_column(flag)) for flag in _GROUP_FLAGS
    )


def _by_kind(values: dict[int, int], default: int) -> pl.Expr:
    """Each line's value for its MULT PROC kind (0-7): a lookup by position, cheaper than a mapping."""
    table = pl.Series([values.get(kind, default) for kind in range(8)], dtype=pl.Int64)
    return pl.lit(table).gather(pl.col("multiple_procedure_kind"))


def _percent_paid(percents: dict[int, int]) -> pl.Expr:
    return _by_kind(percents, _HUNDRED)


def _unit_amounts() -> list[pl.Expr]:
    """Per unit, in hundredths of a cent (§4a): `full` (the fee), `first_unit` (the first unit after
    the MPPR, its TC/PC in full on the group's top line) and `other_units` (every further unit).
    Reads `_group_flags`."""
    fee, pc = pl.col("fee_schedule_cents"), pl.col("professional_cents")
    tc_cut = (fee - pc) * (_HUNDRED - _percent_paid(_TC_PAID_PERCENT))
    pc_cut = pc * (_HUNDRED - _percent_paid(_PC_PAID_PERCENT))
    full = fee * _HUNDRED
    first_unit = full - pl.when("top_tc").then(0).otherwise(tc_cut) - pl.when("top_pc").then(0).otherwise(pc_cut)
    return [full.alias("full"), first_unit.alias("first_unit"), (full - tc_cut - pc_cut).alias("other_units")]


def _amounts() -> list[pl.Expr]:
    """Per line, `amount_e2`: what its units are paid before the adjustment factor, in hundredths of a
    cent (§4a, 4b), and `reduced`/`capped`: whether the diagnostic MPPR or the OPPS cap lowered it.
    A line neither rule touches is fee x units x 100. Reads `_unit_amounts`."""
    units, cap = pl.col("units"), pl.col("opps_cents") * _HUNDRED
    full, first_unit, other_units = pl.col("full"), pl.col("first_unit"), pl.col("other_units")
    more = units > 1
    return [
        (pl.min_horizontal(first_unit, cap) + (units - 1) * pl.min_horizontal(other_units, cap)).alias("amount_e2"),
        ((first_unit < full) | (more & (other_units < full))).alias("reduced"),
        (cap.is_not_null() & ((cap < first_unit) | (more & (cap < other_units)))).alias("capped"),
    ]


# Numbers into keying.NOTE_NAMES: an MPPR note's by kind, plus OPPS_CAP's when capped, or §4c's.
_MPPR_NOTE = {kind: NOTE_NAMES.index(name) for kind, name in DIAGNOSTIC_NOTES.items()}
_CAPPED_NOTE = NOTE_NAMES.index("OPPS_CAP")
_NOT_APPLIED_NOTE = {kind: NOTE_NAMES.index(name) for kind, name in NOT_APPLIED_NOTES.items()}


def _pricing_note() -> pl.Expr:
    """docs/spec.md §4.6, 4a-4c: why a line's amount is what it is ("" for an ordinary line); at most 16
    characters (the warehouse's varchar(16)). Worked as a number into `keying.NOTE_NAMES`: the MPPR's
    note by kind when reduced, plus the cap's; else §4c's where it applies."""
    reduced, capped = pl.col("reduced"), pl.col("capped")
    mppr_note = pl.when(reduced).then(_by_kind(_MPPR_NOTE, 0)).otherwise(0)
    number = mppr_note + pl.when(capped).then(_CAPPED_NOTE).otherwise(0)
    not_applied = pl.when(pl.col("not_applied")).then(_by_kind(_NOT_APPLIED_NOTE, 0)).otherwise(0)
    number = pl.when(number == 0).then(not_applied).otherwise(number)
    named = pl.lit(pl.Series(NOTE_NAMES, dtype=pl.String)).gather(number)
    return pl.when(pl.col("payable")).then(named).otherwise(pl.col("pricing_note").cast(pl.String))


def _in_claim_line_order(lines: pl.DataFrame) -> pl.DataFrame:
    """Sorted by claim_id, line_number; validated extracts already are, and then need no sort."""
    claim_step, line_step = pl.col("claim_id").diff(), pl.col("line_number").diff()
    ordered = lines.select(((claim_step > 0) | ((claim_step == 0) & (line_step > 0))).all()).item()
    return lines if ordered else lines.sort("claim_id", "line_number")


def _in_claim_order(claims: pl.DataFrame) -> pl.DataFrame:
    return claims if claims.get_column("claim_id").is_sorted() else claims.sort("claim_id")


@dataclass(frozen=True)
class Priced:
    """What `price` made of accepted claims: every line priced with its factors visible, and the claim
    totals, ready to load.

    Invariant: a claim's ``line_count`` and ``total_allowed_cents`` are the count and the sum of
    ``allowed_cents`` of its lines; each line's ``allowed_cents`` is between 0 and its charge. Claims
    are in claim_id order, lines in (claim_id, line_number) order.

    Attributes
    ----------
    claims : polars.DataFrame
        One row per priced claim in the `schemas.PRICED_CLAIMS` columns.
    lines : polars.DataFrame
        One row per line in the `schemas.PRICED_LINES` columns: ``fee_schedule_cents``,
        ``adjustment_factor_e5`` (x 10^5), ``allowed_cents``, and ``pricing_note`` ("" or what decided
        the amount: a non-payable status, the diagnostic MPPR, the OPPS cap, docs/spec.md §4).

    Examples
    --------
    >>> import polars as pl
    >>> from claims_etl import Priced
    >>> from claims_etl.schemas import PRICED_CLAIMS, PRICED_LINES
    >>> nothing = Priced(claims=pl.DataFrame(schema=PRICED_CLAIMS), lines=pl.DataFrame(schema=PRICED_LINES))
    >>> nothing.claims.columns[-3:]
    ['line_count', 'total_charge_cents', 'total_allowed_cents']
    """

    claims: pl.DataFrame  # schemas.PRICED_CLAIMS
    lines: pl.DataFrame  # schemas.PRICED_LINES


def price_lines(claims: pl.DataFrame, lines: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Every line priced, with its factors visible (fee, adjustment factor, allowed, note)."""
    return price_keyed_lines(key_lines(lines, claims, reference), reference)


def price_keyed_lines(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """`price_lines` on lines already keyed to their claims and fee schedule rows (keying.key_lines)
    of `reference`."""
    return conform(_in_claim_line_order(_priced(keyed, reference)), PRICED_LINES, name="priced_lines")


def priced_detail(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Keyed lines priced, every intermediate kept beside the `schemas.PRICED_LINES` columns (what
    `claims-etl explain` shows): `pre_mppr_e5` (the factor before MULT PROC 2), `opps_cents` (the OPPS
    amount of a unit, null where no cap), `professional_cents` (a unit's PC, §4a), `top_tc`/`top_pc`
    (the line keeps its first unit's TC/PC in full), `amount_e2` (the units' amount before the
    adjustment factor, in hundredths of a cent), `reduced`, `capped` and `not_applied`."""
    return _medicare_reductions(_with_reduction_rows(_contract_priced(_exact_width(keyed, reference)), reference))


# What §4a-4c read of a line priced by §4.1-4.7: the run gathers only these for the lines they touch.
_REDUCTION_INPUTS = (
    *_SAME_DAY,
    "line_number",
    "units",
    "charge_cents",
    "payable",
    "pricing_note",
    "reduction_row",
    "procedure_code",
    "pricing_modifier_bit",
    "is_facility",
    "qp_listed",
    "conv_factor_e4",
    "qp_conv_factor_e4",
    "pw_gpci_e4",
    "pe_gpci_e4",
    "mp_gpci_e4",
    "work_rvu_e4",
    "fee_schedule_cents",
    "adjustment_factor_e5",
)


def _with_reduction_rows(lines: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Lines with what §4a-4c read of their RVU row (`keying.reduction_rows`), by the row's position in
    `reference.rvu`: lines keyed against other frames would read another row, so that is refused."""
    joined = lines.join(reduction_rows(reference), on="reduction_row", how="left", maintain_order="left")
    misread = joined.filter(pl.col("reduction_row").is_not_null())
    if misread.select(pl.col("reduction_hcpcs").ne_missing(pl.col("procedure_code")).any()).item():
        raise ValueError("lines keyed against other reference frames than those pricing them: key them again")
    return joined.with_columns(pl.col("multiple_procedure_kind").fill_null(0))  # a row no rule reads


def _priced(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """`priced_detail`'s `schemas.PRICED_LINES` columns (the note still an Enum), the run's path:
    §4.1-4.7 on every line, then §4a-4c only on the lines whose RVU row they can touch (diagnostic
    MULT PROC, an OPPS cap, MULT PROC 3 or 5: a few percent of lines), written back into those lines'
    allowed amount and note. A group of §4a (claim, date, indicator) lies wholly inside that subset."""
    priced = _contract_priced(_exact_width(keyed, reference))
    rows = priced.select(pl.arg_where(pl.col("reduction_row").is_not_null())).to_series()
    if rows.is_empty():
        return priced.select(list(PRICED_LINES))
    reduced = _medicare_reductions(_with_reduction_rows(priced.select(_REDUCTION_INPUTS)[rows], reference))
    # Only the output's columns, in one chunk each: the two written below come back as one chunk, and
    # a frame whose columns are chunked differently is copied whole (conform) to align them.
    lines = priced.select(list(PRICED_LINES)).rechunk()
    note = lines.get_column("pricing_note")  # an Enum holding every note (keying.REDUCTION_NOTES)
    return lines.with_columns(
        lines.get_column("allowed_cents").scatter(rows, reduced.get_column("allowed_cents")),
        note.scatter(rows, reduced.get_column("pricing_note").cast(note.dtype)),
    )


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


def _exact_width(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """`keyed`, its money inputs in 128-bit integers when this frame's largest product could pass int64
    (a payer's rules may allow huge unit counts, a hand-built reference huge RVUs): never a wrapped
    amount. The check is one maximum over the lines' units; the reference's maxima are computed once.
    Inputs beyond even 128 bits (or a fee beyond int64 cents) are refused with a ValueError."""
    rvu, gpci, cf = _reference_bounds(reference).row(0)
    fee_product = 3 * rvu * gpci * cf
    largest = (fee_product // _FEE_SCALE_TO_CENTS + 1) * _HUNDRED * _largest(keyed, ("units",)) * _LARGEST_FACTOR_E5
    if fee_product <= _INT64_MAX and largest <= _INT64_MAX:
        return keyed
    if fee_product // _FEE_SCALE_TO_CENTS > _INT64_MAX or largest > _INT128_MAX:
        raise ValueError("RVUs, GPCIs, conversion factors or units too large to price exactly")
    return keyed.with_columns(pl.col(_WIDENED).cast(pl.Int128))


def _contract_priced(keyed: pl.DataFrame) -> pl.DataFrame:
    """§4.1-4.7 without 4a-4c: fee, adjustment factor, allowed = min(charge, fee x units x factor)."""
    missing = keyed.filter(~pl.col("rvu_found") | ~pl.col("gpci_found")).height
    if missing:
        raise ValueError(f"{missing} lines have no RVU or GPCI row: price only validated claims")
    payable = pl.col("payable")
    allowed = round_half_up_div(
        pl.col("fee_schedule_cents") * pl.col("units") * pl.col("adjustment_factor_e5"), FACTOR_ONE
    )
    factored = keyed.with_columns(_fee_schedule_cents().alias("fee_schedule_cents")).with_columns(
        _factor_before_multiple_procedure().alias("pre_mppr_e5")
    )
    secondary = pl.repeat(False, factored.height, eager=True).scatter(_secondary_procedure_rows(factored), True)
    return factored.with_columns(
        _times(pl.col("pre_mppr_e5"), SECONDARY_PROCEDURE, pl.lit(secondary)).alias("adjustment_factor_e5")
    ).with_columns(
        # At most the charge: int64 again even when priced in 128 bits (`_exact_width`).
        pl.when(payable)
        .then(pl.min_horizontal(pl.col("charge_cents"), allowed))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("allowed_cents"),
        pl.col("is_facility").cast(pl.Int8).alias("facility"),
        pl.col("rvu_release").cast(pl.String),
        pl.when(_PRICED_AS_QP).then(pl.lit("qp")).otherwise(pl.lit("non_qp")).alias("cf_kind"),
    )


def _medicare_reductions(priced: pl.DataFrame) -> pl.DataFrame:
    """§4a-4c on lines `_contract_priced` priced: the allowed amount from the units' exact amount after
    the diagnostic MPPR and the OPPS cap (times the adjustment factor, rounded half up once, at most
    the charge), and the note saying which decided it. A line neither touches keeps its amount."""
    exact = round_half_up_div(pl.col("amount_e2") * pl.col("adjustment_factor_e5"), _HUNDRED * FACTOR_ONE)
    with_parts = priced.with_columns(
        _opps_cents().alias("opps_cents"), _professional_cents().alias("professional_cents")
    )
    return (
        _with_group_flags(with_parts)
        .with_columns(_unit_amounts())
        .with_columns(_amounts())
        .with_columns(
            pl.when(pl.col("payable"))
            .then(pl.min_horizontal(pl.col("charge_cents"), exact))
            .otherwise(0)
            .cast(pl.Int64)
            .alias("allowed_cents"),
            _pricing_note().alias("pricing_note"),
        )
    )


def price(
    claims: pl.DataFrame, lines: pl.DataFrame, reference: ReferenceFrames, *, rules: RulesConfig | None = None
) -> Priced:
    """Price accepted claims: lines per docs/spec.md §4.1-4.6 and 4a-4c, claim totals per 4.7; no I/O.

    Each line's fee is (work RVU x work GPCI + PE RVU x PE GPCI + MP RVU x MP GPCI) x conversion
    factor (the facility or non-facility PE RVU by place of service), rounded half up to the cent; its
    allowed amount is fee x units, lowered by the diagnostic MPPR and the OPPS imaging cap where they
    apply, x the adjustment factor (bilateral, assistant, co-surgeon, multiple procedure), rounded half
    up once and capped at the charge, 0 for a non-payable status.
    Invariant: exact integer arithmetic throughout, no binary floats; a claim's total is the sum of
    its lines.

    Parameters
    ----------
    claims : polars.DataFrame
        Accepted claims with the `schemas.CLAIMS` columns (`Validated.accepted_claims`); a claim
        without lines is left out.
    lines : polars.DataFrame
        Their lines with the `schemas.LINES` columns (`Validated.accepted_lines`).
    reference : ReferenceFrames
        The fee schedule years the lines were validated against.
    rules : RulesConfig, optional
        The rules file the claims were validated with: its `pricing.facility_pos` decides which
        places of service are facilities (§4.1); without it, the contract's set.

    Returns
    -------
    Priced
        Priced claims and lines in claim_id order.

    Raises
    ------
    ValueError
        If a line has no RVU or GPCI row: price only validated claims.

    Examples
    --------
    CMS's 99214 in a non-facility office, GPCI 1.0: $135.61, the second line capped at its charge:

    >>> from datetime import date
    >>> import polars as pl
    >>> import claims_etl as ce
    >>> from claims_etl.schemas import CLAIMS, GPCI, LINES, RVU
    >>> rvu = pl.DataFrame([{"year": 2026, "hcpcs": "99214", "modifier": "", "status_code": "A",
    ...     "work_rvu_e4": 19_200, "nonfac_pe_rvu_e4": 20_000, "facility_pe_rvu_e4": 4_700,
    ...     "mp_rvu_e4": 1_400, "conv_factor_e4": 334_009}], schema=RVU)
    >>> gpci = pl.DataFrame([{"year": 2026, "mac": "01112", "locality": "05", "pw_gpci_e4": 10_000,
    ...     "pe_gpci_e4": 10_000, "mp_gpci_e4": 10_000}], schema=GPCI)
    >>> claim = {"claim_id": 1, "mac": "01112", "locality": "05", "place_of_service": "11"}
    >>> line = {"claim_id": 1, "service_date": date(2026, 3, 2), "procedure_code": "99214", "units": 1}
    >>> lines = pl.DataFrame([line | {"line_number": 1, "charge_cents": 20_000},
    ...                       line | {"line_number": 2, "charge_cents": 10_000}], schema=LINES)
    >>> priced = ce.price(pl.DataFrame([claim], schema=CLAIMS), lines, ce.ReferenceFrames(rvu=rvu, gpci=gpci))
    >>> priced.lines.select("line_number", "fee_schedule_cents", "allowed_cents").rows()
    [(1, 13561, 13561), (2, 13561, 10000)]
    >>> priced.claims.select("claim_id", "line_count", "total_allowed_cents").rows()
    [(1, 2, 23561)]
    """
    claims = conform(claims, CLAIMS, name="claims")
    lines = conform(lines, LINES, name="lines")
    places = FACILITY_POS if rules is None else facility_pos(rules)
    return price_keyed(claims, key_lines(lines, claims, reference, facility_pos=places), reference)


def price_keyed(claims: pl.DataFrame, keyed: pl.DataFrame, reference: ReferenceFrames) -> Priced:
    """`price` on lines already keyed (`Validated.accepted_keyed_lines`): the run's path, which joins
    the fee schedule once for validate and price together."""
    priced_lines = price_keyed_lines(keyed, reference)
    # price_keyed_lines returns claim_id, line_number order: the group-by may take its sorted path.
    totals = priced_lines.group_by(pl.col("claim_id").set_sorted()).agg(
        pl.len().cast(pl.Int32).alias("line_count"),
        pl.col("allowed_cents").sum().alias("total_allowed_cents"),
    )
    priced_claims = _in_claim_order(conform(claims, CLAIMS, name="claims").join(totals, on="claim_id", how="inner"))
    return Priced(claims=conform(priced_claims, PRICED_CLAIMS, name="priced_claims"), lines=priced_lines)
