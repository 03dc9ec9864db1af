"""Price stage (pure): the Medicare Physician Fee Schedule, docs/spec.md §4, in exact integers.

Scales: RVUs, GPCIs and the conversion factor are integers x 10^4, money is integer cents,
adjustment factors are integers x 10^5. Every factor the contract names (1.5, 0.16, 0.136, 0.625,
0.5) has a denominator dividing 2^5 x 5^5 = 10^5, and so has any product of them: x 10^5 holds every
adjustment factor exactly, and each multiplication by one divides evenly by 10^5. The diagnostic
MPPR's shares (50%, 75%, 80%, 95%) are whole percents of whole cents: amounts it touches are kept in
hundredths of a cent (`*_e2` cents) until the allowed amount is rounded, once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.schemas import CLAIMS, LINES, PRICED_CLAIMS, PRICED_LINES, conform
from claims_etl.settings.rules_file import RulesConfig
from claims_etl.stages.columns import FACILITY_POS, enum_categories, enum_text, has_modifier
from claims_etl.stages.fees import BILATERAL, FACTOR_ONE, PRICED_AS_QP, cents_for, exact_width, round_half_up_div
from claims_etl.stages.keying import key_lines
from claims_etl.stages.reductions import REDUCTION_INPUTS, medicare_reductions, with_reduction_rows
from claims_etl.stages.rules import facility_pos

ASSISTANT = 16_000
ASSISTANT_AS = 13_600
CO_SURGEON = 62_500
SECONDARY_PROCEDURE = 50_000


def _times(factor: pl.Expr, multiplier: int, applies: pl.Expr) -> pl.Expr:
    return pl.when(applies).then(factor * multiplier // FACTOR_ONE).otherwise(factor)


def _fee_schedule_cents() -> pl.Expr:
    return cents_for("work_rvu_e4", "nonfac_pe_rvu_e4", "facility_pe_rvu_e4", "mp_rvu_e4")


def _factor_before_multiple_procedure() -> pl.Expr:
    factor = pl.lit(FACTOR_ONE, dtype=pl.Int64)
    factor = _times(factor, BILATERAL, has_modifier("50") & pl.col("bilateral_surgery"))
    factor = _times(factor, ASSISTANT, has_modifier("80", "81", "82"))
    factor = _times(factor, ASSISTANT_AS, has_modifier("AS"))
    return _times(factor, CO_SURGEON, has_modifier("62") & pl.col("co_surgery"))


_CF_KINDS = pl.Series(["non_qp", "qp"])  # by PRICED_AS_QP
_SAME_DAY = ("claim_id", "service_date")
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
    return medicare_reductions(with_reduction_rows(_contract_priced(exact_width(keyed, reference)), reference))


def _priced(keyed: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """`priced_detail`'s `schemas.PRICED_LINES` columns, the run's path: §4.1-4.7 on every line, then
    §4a-4c only on the lines whose RVU row they can touch (diagnostic MULT PROC, an OPPS cap, MULT PROC 3
    or 5: a few percent of lines), written back into those lines' allowed amount and note. A group of
    §4a (claim, date, indicator) lies wholly inside that subset."""
    priced = _contract_priced(exact_width(keyed, reference))
    touched = pl.col("reduction_row").is_not_null()
    rows = priced.select(pl.arg_where(touched)).to_series()
    if rows.is_empty():
        return priced.select(list(PRICED_LINES)).with_columns(enum_text(priced, "pricing_note"))
    # A lazy filter of the columns they read costs less than gathering them by `rows` (benchmarks/LOG.md).
    subset = priced.lazy().select(REDUCTION_INPUTS).filter(touched).collect()
    reduced = medicare_reductions(with_reduction_rows(subset, reference))
    lines = priced.select(list(PRICED_LINES))
    # The note is an Enum holding every note (keying.NOTE_NAMES): the reduced lines' notes are written
    # as its numbers, then every line's text is gathered by number once (as `enum_text`); scattering
    # into the Enum itself costs three times as much.
    notes, chunks = enum_categories(lines, "pricing_note"), lines.get_column("allowed_cents").chunk_lengths()
    numbers = lines.get_column("pricing_note").to_physical()
    numbers.scatter(rows, reduced.get_column("pricing_note").cast(lines.schema["pricing_note"]).to_physical())
    allowed = lines.get_column("allowed_cents").scatter(rows, reduced.get_column("allowed_cents"))
    return lines.with_columns(
        _in_chunks(allowed, chunks), _in_chunks(notes.gather(numbers).alias("pricing_note"), chunks)
    )


def _in_chunks(column: pl.Series, lengths: list[int]) -> pl.Series:
    """`column` (one chunk, as `scatter` leaves it) cut into chunks of `lengths` without copying: a
    frame whose columns are chunked differently is copied whole to align them (`conform`)."""
    if len(lengths) < 2:
        return column
    starts = itertools.accumulate(lengths[:-1], initial=0)
    parts = [column.slice(start, length) for start, length in zip(starts, lengths, strict=True)]
    return pl.concat(parts, rechunk=False)


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
        # At most the charge: int64 again even when priced in 128 bits (`exact_width`).
        pl.when(payable)
        .then(pl.min_horizontal(pl.col("charge_cents"), allowed))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("allowed_cents"),
        pl.col("is_facility").cast(pl.Int8).alias("facility"),
        enum_text(keyed, "rvu_release"),
        pl.lit(_CF_KINDS).gather(PRICED_AS_QP.cast(pl.UInt32)).alias("cf_kind"),  # as `enum_text`
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
    priced_claims = _with_totals(conform(claims, CLAIMS, name="claims"), totals)
    return Priced(claims=conform(priced_claims, PRICED_CLAIMS, name="priced_claims"), lines=priced_lines)


def _with_totals(claims: pl.DataFrame, totals: pl.DataFrame) -> pl.DataFrame:
    """Claims with their lines' totals, in claim_id order; a claim without lines is left out. Validated
    claims all have lines (V15) and come in claim_id order, as the totals do: then the totals are set
    beside them, where a join would gather every claim column anew (benchmarks/LOG.md)."""
    if claims.get_column("claim_id").equals(totals.get_column("claim_id")):
        chunks = claims.get_column("claim_id").chunk_lengths()
        return claims.with_columns(_in_chunks(totals.get_column(name), chunks) for name in totals.columns[1:])
    return _in_claim_order(claims.join(totals, on="claim_id", how="inner"))
