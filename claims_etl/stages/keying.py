"""What ties a service line to its claim and its fee schedule rows (docs/spec.md §4.1-4.2), shared by
validate and price.

Keying runs on every line of every range, so it stays off text where it can: each join carries only
its keys and the numbers and flags the rules and pricing read, never a wide frame of strings, and the
text columns the rules ask about (modifiers, places of service) are classified once per distinct
value (`by_value`), not once per line.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import polars as pl

from claims_etl.reference import ReferenceFrames

MODIFIERS = ("modifier_1", "modifier_2", "modifier_3", "modifier_4")
FACILITY_POS = (
    "02",
    "19",
    "21",
    "22",
    "23",
    "24",
    "26",
    "31",
    "34",
    "41",
    "42",
    "51",
    "52",
    "53",
    "56",
    "61",
)
MODIFIER_PATTERN = r"^[A-Z0-9]{2}$"
PRICING_MODIFIERS = ("26", "TC", "53")
PAYABLE_STATUS = ("A", "R", "T")  # docs/spec.md §4.6: any other STATUS CODE is allowed 0
# Bits of a line's `modifier_flags`: the modifier codes a rule or a factor asks about, carried by any
# of the line's four modifiers, and whether any of them is malformed (V06).
MODIFIER_BITS = {"26": 1, "TC": 2, "53": 4, "50": 8, "80": 16, "81": 32, "82": 64, "AS": 128, "62": 256}
MALFORMED_MODIFIER = 512
# A modifier column's key (`modifier_n_key`): its value's number times this, plus its flags.
_FLAG_SPAN = 1 << 10
# The pricing modifiers are the low bits; 0 is none, the RVU row with a blank modifier.
PRICING_MODIFIER_BITS = {"": 0, **{code: MODIFIER_BITS[code] for code in PRICING_MODIFIERS}}
PRICING_MODIFIER_MASK = functools.reduce(operator.or_, PRICING_MODIFIER_BITS.values())
_KEY = pl.Int64


def present(column: str) -> pl.Expr:
    """An optional text value is present when it is not null and not blank."""
    return is_present(pl.col(column))


def is_present(value: pl.Expr) -> pl.Expr:
    return value.is_not_null() & (value.str.strip_chars() != "")


def by_value(column: str, classify: Callable[[pl.Expr], pl.Expr], *, null: pl.Expr) -> pl.Expr:
    """`classify` of each row's `column` value, evaluated once per distinct value and matched back by a
    hash lookup; `null` (a typed literal) where the value is null. Codes repeat across rows, and a regex
    or a chain of comparisons costs more per row than the lookup. `classify` maps each value alone."""
    distinct = pl.col(column).drop_nulls().unique().sort()  # sorted: one order wherever it is evaluated
    # `default` does double duty: nulls take it, and it keeps the type when there is no value at all.
    return pl.col(column).replace_strict(distinct, classify(distinct), default=null)


def per_distinct(column: str, broken: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """`by_value` for a yes/no question: `broken` of each row's `column` value (null included), once per
    distinct value, matched back by `is_in` on the values that break it, which is cheaper than
    `replace_strict` (benchmarks/LOG.md). Codes and NPIs repeat across rows, so the distinct values are
    few. `broken` must not give null."""
    distinct = pl.col(column).unique().sort()  # sorted: one order for every use of it in `broken`
    return pl.col(column).is_in(distinct.filter(broken(distinct)).implode(), nulls_equal=True)


def value_number(distinct: pl.Expr) -> pl.Expr:
    """1, 2, 3, ... for each present value of a distinct column (`by_value`'s), 0 for a blank one: two
    lines' numbers are equal exactly when their values are, absent equal to absent (V12)."""
    return pl.when(is_present(distinct)).then(distinct.cum_count()).otherwise(0).cast(_KEY)


def modifier_key_of(distinct: pl.Expr) -> pl.Expr:
    """A modifier value's number (`value_number`) above its MODIFIER_BITS and MALFORMED_MODIFIER bit."""
    malformed = is_present(distinct) & ~distinct.str.contains(MODIFIER_PATTERN).fill_null(False)
    bits = [(distinct == code, bit) for code, bit in MODIFIER_BITS.items()] + [(malformed, MALFORMED_MODIFIER)]
    flags = [pl.when(applies).then(bit).otherwise(0).cast(_KEY) for applies, bit in bits]
    return functools.reduce(operator.or_, flags, value_number(distinct) * _FLAG_SPAN)


def modifier_number(column: str) -> pl.Expr:
    """The number of a keyed line's modifier value (`value_number`)."""
    return pl.col(f"{column}_key") // _FLAG_SPAN


def has_modifier(*codes: str) -> pl.Expr:
    """True where any of a keyed line's four modifiers is one of `codes` (each in MODIFIER_BITS)."""
    mask = functools.reduce(operator.or_, (MODIFIER_BITS[code] for code in codes))
    return (pl.col("modifier_flags") & mask) != 0


def claim_id_sorted_if(frame: pl.DataFrame) -> pl.Expr:
    """`claim_id`, marked sorted when it is (extracted ranges are), so joins and group-bys take their
    sorted path."""
    claim_id = pl.col("claim_id")
    return claim_id.set_sorted() if frame.get_column("claim_id").is_sorted() else claim_id


def _with_modifier_keys(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per modifier column its `modifier_n_key` (`modifier_key_of`), then `modifier_flags` (every
    modifier's bits together) and `pricing_modifier_bit` (the first of the line's modifiers that is
    26, TC or 53, docs/spec.md §4.2; 0 for none): one lookup per modifier column for all of it."""
    keys = [pl.col(f"{column}_key") for column in MODIFIERS]
    flag_mask = _FLAG_SPAN - 1
    pricing = [key & PRICING_MODIFIER_MASK for key in keys]
    return lines.with_columns(
        by_value(column, modifier_key_of, null=pl.lit(0, _KEY)).alias(f"{column}_key") for column in MODIFIERS
    ).with_columns(
        (functools.reduce(operator.or_, keys) & flag_mask).alias("modifier_flags"),
        pl.coalesce(*(pl.when(bit != 0).then(bit) for bit in pricing), pl.lit(0, _KEY)).alias("pricing_modifier_bit"),
    )


def _localities(reference: ReferenceFrames) -> pl.LazyFrame:
    """A number for each MAC and locality of the GPCI table: claims carry it to their lines instead of
    the two strings."""
    return (
        reference.gpci.lazy().select("mac", "locality").unique().sort("mac", "locality").with_row_index("locality_id")
    )


def _claim_keys(claims: pl.DataFrame, localities: pl.LazyFrame) -> pl.LazyFrame:
    """Per claim, what its lines need of it: dates for V09/V10, whether its place of service is a
    facility (docs/spec.md §4.1), and its locality's number (`_localities`; null if the GPCI has none)."""
    return (
        claims.lazy()
        .select(
            claim_id_sorted_if(claims),
            "patient_dob",
            "received_date",
            pl.col("place_of_service").is_in(FACILITY_POS).fill_null(False).alias("claim_facility"),
            "mac",
            "locality",
        )
        .join(localities, on=["mac", "locality"], how="left", maintain_order="left", validate="m:1")
        .drop("mac", "locality")
    )


def _gpci_rows(reference: ReferenceFrames, localities: pl.LazyFrame) -> pl.LazyFrame:
    """GPCI rows by year and locality number (`_localities`)."""
    return (
        reference.gpci.lazy()
        .join(localities, on=["mac", "locality"], how="left")
        .select("year", "locality_id", "pw_gpci_e4", "pe_gpci_e4", "mp_gpci_e4", pl.lit(True).alias("gpci_found"))
    )


def _procedure_codes(reference: ReferenceFrames) -> pl.DataFrame:
    """One row per year and HCPCS with a number for the code, and `split_allowed`: whether the PCTC
    IND of its row without a modifier is 1 (V06 asks it whether 26/TC may split the code)."""
    blank_row_pctc = (pl.col("pctc_ind") == "1").fill_null(False) & (pl.col("modifier") == "")
    return (
        reference.rvu.group_by("year", "hcpcs")
        .agg(blank_row_pctc.any().alias("split_allowed"))
        .sort("year", "hcpcs")
        .with_row_index("code_id")
    )


def _fee_schedule_rows(reference: ReferenceFrames, codes: pl.DataFrame) -> pl.LazyFrame:
    """RVU rows by code number and pricing modifier bit, with the numbers and flags pricing reads.
    Rows with any other modifier are never a line's RVU row (docs/spec.md §4.2), so they are left out."""
    pricing_bit = pl.col("modifier").replace_strict(PRICING_MODIFIER_BITS, default=None, return_dtype=_KEY)
    status = pl.col("status_code")
    payable = status.is_in(PAYABLE_STATUS).fill_null(False)
    notes = pl.when(payable).then(pl.lit("")).otherwise(pl.lit("STATUS_") + status)
    rows = reference.rvu.with_columns(pricing_bit.alias("pricing_modifier_bit"), notes.alias("pricing_note"))
    # An Enum of this frame's own notes: lines gather its small integers, not strings.
    note_type = pl.Enum(rows.get_column("pricing_note").drop_nulls().unique().sort())
    return (
        rows.lazy()
        .filter(pl.col("pricing_modifier_bit").is_not_null())
        .join(codes.lazy(), on=["year", "hcpcs"], how="left")
        .select(
            "code_id",
            "pricing_modifier_bit",
            "work_rvu_e4",
            "nonfac_pe_rvu_e4",
            "facility_pe_rvu_e4",
            "mp_rvu_e4",
            "conv_factor_e4",
            payable.alias("payable"),
            pl.col("pricing_note").cast(note_type),
            (pl.col("mult_proc") == "2").fill_null(False).alias("multiple_procedure"),
            (pl.col("bilat_surg") == "1").fill_null(False).alias("bilateral_surgery"),
            pl.col("co_surg").is_in(("1", "2")).fill_null(False).alias("co_surgery"),
            pl.lit(True).alias("rvu_found"),
        )
    )


def _look_up(keyed: pl.LazyFrame, table: pl.LazyFrame, *, on: list[str]) -> pl.LazyFrame:
    """One reference lookup for every line: a left join on keys that are unique in `table` (checked),
    lines kept in their order; a line without a match gets nulls."""
    return keyed.join(table, on=on, how="left", maintain_order="left", validate="m:1")


def key_lines(lines: pl.DataFrame, claims: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Lines (every column kept) with what validate and price read of their claim and fee schedule rows:
    `year`, `modifier_flags`, `is_facility` (docs/spec.md §4.1), the RVU row's numbers and flags and
    `rvu_found` (4.2), the GPCI row's numbers and `gpci_found`, `split_allowed` (V06), and the claim's
    `patient_dob` and `received_date`. Validate builds this once; price reuses the accepted part of it."""
    codes, localities = _procedure_codes(reference), _localities(reference)
    line_pos_facility = by_value(
        "place_of_service",
        lambda pos: pl.when(is_present(pos)).then(pos.is_in(FACILITY_POS)),
        null=pl.lit(None, pl.Boolean),
    )
    keyed = (
        _with_modifier_keys(lines.lazy().with_columns(claim_id_sorted_if(lines)))
        .with_columns(pl.col("service_date").dt.year().alias("year"))
        .join(_claim_keys(claims, localities), on="claim_id", how="left", maintain_order="left")
        .with_columns(line_pos_facility.fill_null(pl.col("claim_facility")).fill_null(False).alias("is_facility"))
        .pipe(
            _look_up,
            codes.lazy().select("year", pl.col("hcpcs").alias("procedure_code"), "code_id", "split_allowed"),
            on=["year", "procedure_code"],
        )
        .pipe(_look_up, _fee_schedule_rows(reference, codes), on=["code_id", "pricing_modifier_bit"])
        .pipe(_look_up, _gpci_rows(reference, localities), on=["year", "locality_id"])
        .with_columns(pl.col("rvu_found", "gpci_found", "split_allowed").fill_null(False))
        .drop("claim_facility", "locality_id", "code_id")
    )
    return keyed.collect()
