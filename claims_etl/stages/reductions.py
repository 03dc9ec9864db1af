"""Docs/spec.md §4a-4c on priced lines: the diagnostic multiple procedure payment reduction (MULT PROC
4, 6, 7, with the PC/TC split by the code's 26 row), the OPPS imaging cap, and the notes of MULT PROC 3
and 5, which are not applied. The price stage runs them only on the lines whose RVU row they read
(`keying.reduction_rows`); their shares (50%, 75%, 80%, 95%) are whole percents of whole cents, so the
amounts are kept in hundredths of a cent until the allowed amount is rounded, once."""

from __future__ import annotations

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.stages.columns import MODIFIER_BITS
from claims_etl.stages.fees import FACTOR_ONE, HUNDRED, cents_for, round_half_up_div
from claims_etl.stages.keying import (
    DIAGNOSTIC_MPPR_KINDS,
    DIAGNOSTIC_NOTES,
    NOT_APPLIED_NOTES,
    NOTE_NAMES,
    reduction_rows,
)

_SAME_DAY = ("claim_id", "service_date")
_MPPR_GROUP = [*_SAME_DAY, "multiple_procedure_kind"]


def _opps_cents() -> pl.Expr:
    """The OPPS amount of a unit (§4b): the same formula with the PE and MP RVUs CMS uses for the OPPS
    payment amount; null where the row is not capped."""
    return cents_for("work_rvu_e4", "opps_nonfac_pe_rvu_e4", "opps_facility_pe_rvu_e4", "opps_mp_rvu_e4")


def _professional_cents() -> pl.Expr:
    """A unit's professional part PC (§4a): all of a 26 line, none of a TC line, and of any other line
    the code's 26 row priced for this line (0 without one), never more than the line's fee."""
    fee, bit = pl.col("fee_schedule_cents"), pl.col("pricing_modifier_bit")
    global_pc = cents_for("pc_work_rvu_e4", "pc_nonfac_pe_rvu_e4", "pc_facility_pe_rvu_e4", "pc_mp_rvu_e4")
    return (
        pl.when(bit == MODIFIER_BITS["26"])
        .then(fee)
        .when(bit == MODIFIER_BITS["TC"])
        .then(0)
        .otherwise(pl.min_horizontal(global_pc.fill_null(0), fee))
    )


# docs/spec.md §4a: per diagnostic MULT PROC, the percent of a further unit's TC and PC that is paid.
_TC_PAID_PERCENT = {4: 50, 6: 75, 7: 80}
_PC_PAID_PERCENT = {4: 95}


def _group_top(subject: pl.Expr, rank: pl.Expr) -> pl.Expr:
    """True on the `subject` line with the highest `rank` in its §4a group (claim, date, indicator),
    ties to the lowest line_number: the rank and the line number packed into one key, so one window
    maximum finds it (line numbers are smallints, 2^16 values; ranks in cents stay below 2^47, far above
    any fee `exact_width` leaves in int64)."""
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
    shared = _claim_id_repeated(lines)
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


def _claim_id_repeated(lines: pl.DataFrame) -> pl.Expr:
    """True on a line whose claim_id another line has: lines in claim order (priced lines are) need
    only their neighbours, a comparison instead of `is_duplicated`'s hash table."""
    claim_id = pl.col("claim_id")
    if not lines.get_column("claim_id").is_sorted():
        return claim_id.is_duplicated()
    return (claim_id == claim_id.shift(1)).fill_null(False) | (claim_id == claim_id.shift(-1)).fill_null(False)


def _by_kind(values: dict[int, int], default: int) -> pl.Expr:
    """Each line's value for its MULT PROC kind (0-7): a lookup by position, cheaper than a mapping."""
    table = pl.Series([values.get(kind, default) for kind in range(8)], dtype=pl.Int64)
    return pl.lit(table).gather(pl.col("multiple_procedure_kind"))


def _percent_paid(percents: dict[int, int]) -> pl.Expr:
    return _by_kind(percents, HUNDRED)


def _unit_amounts() -> list[pl.Expr]:
    """Per unit, in hundredths of a cent (§4a): `full` (the fee), `first_unit` (the first unit after
    the MPPR, its TC/PC in full on the group's top line) and `other_units` (every further unit).
    Reads `_group_flags`."""
    fee, pc = pl.col("fee_schedule_cents"), pl.col("professional_cents")
    tc_cut = (fee - pc) * (HUNDRED - _percent_paid(_TC_PAID_PERCENT))
    pc_cut = pc * (HUNDRED - _percent_paid(_PC_PAID_PERCENT))
    full = fee * HUNDRED
    first_unit = full - pl.when("top_tc").then(0).otherwise(tc_cut) - pl.when("top_pc").then(0).otherwise(pc_cut)
    return [full.alias("full"), first_unit.alias("first_unit"), (full - tc_cut - pc_cut).alias("other_units")]


def _amounts() -> list[pl.Expr]:
    """Per line, `amount_e2`: what its units are paid before the adjustment factor, in hundredths of a
    cent (§4a, 4b), and `reduced`/`capped`: whether the diagnostic MPPR or the OPPS cap lowered it.
    A line neither rule touches is fee x units x 100. Reads `_unit_amounts`."""
    units, cap = pl.col("units"), pl.col("opps_cents") * HUNDRED
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


# What §4a-4c read of a line priced by §4.1-4.7: the run gathers only these for the lines they touch.
REDUCTION_INPUTS = (
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


def with_reduction_rows(lines: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Lines with what §4a-4c read of their RVU row (`keying.reduction_rows`), by the row's position in
    `reference.rvu`: lines keyed against other frames would read another row, so that is refused."""
    joined = lines.join(reduction_rows(reference), on="reduction_row", how="left", maintain_order="left")
    misread = pl.col("reduction_row").is_not_null() & pl.col("reduction_hcpcs").ne_missing(pl.col("procedure_code"))
    if joined.select(misread.any()).item():
        raise ValueError("lines keyed against other reference frames than those pricing them: key them again")
    return joined.with_columns(pl.col("multiple_procedure_kind").fill_null(0))  # a row no rule reads


def medicare_reductions(priced: pl.DataFrame) -> pl.DataFrame:
    """§4a-4c on lines `_contract_priced` priced: the allowed amount from the units' exact amount after
    the diagnostic MPPR and the OPPS cap (times the adjustment factor, rounded half up once, at most
    the charge), and the note saying which decided it. A line neither touches keeps its amount."""
    exact = round_half_up_div(pl.col("amount_e2") * pl.col("adjustment_factor_e5"), HUNDRED * FACTOR_ONE)
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
