"""Expressions over a claim's and a line's own columns, shared by keying, the rules and pricing: the
modifier codes as bits (classified once per distinct value, `by_value`), places of service, presence,
and Enum columns as text. No joins: those are keying's (claims_etl/stages/keying.py)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import polars as pl

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
FLAG_SPAN = 1 << 10
# The pricing modifiers are the low bits; 0 is none, the RVU row with a blank modifier.
PRICING_MODIFIER_BITS = {"": 0, **{code: MODIFIER_BITS[code] for code in PRICING_MODIFIERS}}
PRICING_MODIFIER_MASK = functools.reduce(operator.or_, PRICING_MODIFIER_BITS.values())
KEY = pl.Int64


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
    return pl.when(is_present(distinct)).then(distinct.cum_count()).otherwise(0).cast(KEY)


def modifier_key_of(distinct: pl.Expr) -> pl.Expr:
    """A modifier value's number (`value_number`) above its MODIFIER_BITS and MALFORMED_MODIFIER bit."""
    malformed = is_present(distinct) & ~distinct.str.contains(MODIFIER_PATTERN).fill_null(False)
    bits = [(distinct == code, bit) for code, bit in MODIFIER_BITS.items()] + [(malformed, MALFORMED_MODIFIER)]
    flags = [pl.when(applies).then(bit).otherwise(0).cast(KEY) for applies, bit in bits]
    return functools.reduce(operator.or_, flags, value_number(distinct) * FLAG_SPAN)


def modifier_number(column: str) -> pl.Expr:
    """The number of a keyed line's modifier value (`value_number`)."""
    return pl.col(f"{column}_key") // FLAG_SPAN


def has_modifier(*codes: str) -> pl.Expr:
    """True where any of a keyed line's four modifiers is one of `codes` (each in MODIFIER_BITS)."""
    mask = functools.reduce(operator.or_, (MODIFIER_BITS[code] for code in codes))
    return (pl.col("modifier_flags") & mask) != 0


def enum_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """`frame`'s Enum `column` as text: each value's category gathered by its number. A String view
    gathered from the few categories shares their bytes; a cast writes every row's string anew, about
    ten times the work on a run's lines (benchmarks/LOG.md). A text column is returned as it is."""
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Enum):
        return pl.col(column)
    return pl.lit(dtype.categories).gather(pl.col(column).to_physical()).alias(column)


def enum_categories(frame: pl.DataFrame, column: str) -> pl.Series:
    """The categories of `frame`'s Enum `column`, by number."""
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Enum):
        raise TypeError(f"{column} is {dtype}, not an Enum")
    return dtype.categories


def claim_id_sorted_if(frame: pl.DataFrame) -> pl.Expr:
    """`claim_id`, marked sorted when it is (extracted ranges are), so joins and group-bys take their
    sorted path."""
    claim_id = pl.col("claim_id")
    return claim_id.set_sorted() if frame.get_column("claim_id").is_sorted() else claim_id
