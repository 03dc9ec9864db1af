"""Validation rules V01-V15 (docs/spec.md §5) as data: each a frozen record whose expression is true
where a row breaks it. Line rules run on keyed lines (keying.key_lines), claim rules on claims with
their line aggregates. Nulls never pass a rule silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import polars as pl

from claims_etl.stages.keying import (
    MALFORMED_MODIFIER,
    MODIFIERS,
    by_value,
    has_modifier,
    is_present,
    modifier_number,
    per_distinct,
)

POS_CODES = tuple(
    f"{code:02d}"
    for code in [*range(1, 28), *range(31, 35), 41, 42, *range(49, 59), 60, 61, 62, 65, 66, 71, 72, 81, 99]
)
ICD10_CM = r"^[A-Z][0-9][A-Z0-9](?:\.?[A-Z0-9]{1,4})?$"
PROCEDURE_CODE = r"^(?:[0-9]{5}|[0-9]{4}[FTU]|[A-V][0-9]{4})$"
NPI_SHAPE = r"^[12][0-9]{9}$"
# Luhn over "80840" + the first nine NPI digits: the prefix's digits always contribute 24.
NPI_PREFIX_LUHN_SUM = 24


@dataclass(frozen=True)
class Rule:
    id: str
    level: Literal["claim", "line"]
    description: str
    broken: pl.Expr
    severity: Literal["error"] = "error"  # every contract rule rejects; warn tiers would go here


def invalid_npi(npi: pl.Expr) -> pl.Expr:
    """True where the NPI is not 10 digits starting 1 or 2 with a valid Luhn check digit."""
    digit = [npi.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(10)]
    doubled = [(d * 2 - 9 * (d >= 5).cast(pl.Int32)) for d in digit[0:9:2]]  # 2d, minus 9 past 9
    total = pl.sum_horizontal(*doubled, *digit[1:9:2]) + NPI_PREFIX_LUHN_SUM
    check_digit = (10 - total % 10) % 10
    well_formed = npi.str.contains(NPI_SHAPE).fill_null(False)
    return ~(well_formed & (check_digit == digit[9]).fill_null(False))


def _malformed_if_present(column: str, pattern: str) -> pl.Expr:
    return per_distinct(column, lambda value: is_present(value) & ~value.str.contains(pattern).fill_null(False))


def _not_pos(column: str) -> pl.Expr:
    return ~pl.col(column).is_in(POS_CODES).fill_null(False)


def _line_pos_not_pos() -> pl.Expr:
    """V11 on a line: its place of service, when present, is not a CMS POS code."""
    return per_distinct("place_of_service", lambda pos: is_present(pos) & ~pos.is_in(POS_CODES).fill_null(False))


def _malformed_procedure_code() -> pl.Expr:
    return per_distinct("procedure_code", lambda code: ~code.str.contains(PROCEDURE_CODE).fill_null(False))


def _filed_late() -> pl.Expr:
    """V10: received more than a year after service (29 Feb + 1 year = 28 Feb), one offset per date."""
    a_year_on = by_value("service_date", lambda service: service.dt.offset_by("1y"), null=pl.lit(None, pl.Date))
    return (pl.col("received_date") > a_year_on).fill_null(True)


def _modifier_broken() -> pl.Expr:
    """V06: malformed modifier, 26 with TC, or 26/TC on a code whose PCTC IND is not 1."""
    malformed = (pl.col("modifier_flags") & MALFORMED_MODIFIER) != 0
    has_26, has_tc = has_modifier("26"), has_modifier("TC")
    return malformed | (has_26 & has_tc) | ((has_26 | has_tc) & ~pl.col("split_allowed"))


def _duplicate_line() -> pl.Expr:
    """V12: same procedure, modifiers and date on two lines of one claim (absent equals absent).
    Modifiers compare by their numbers (`keying.value_number`): equal exactly when the text is."""
    modifiers = [modifier_number(m).alias(m) for m in MODIFIERS]
    return pl.struct("claim_id", "procedure_code", *modifiers, "service_date").is_duplicated()


def line_rules(run_date: date) -> list[Rule]:
    service = pl.col("service_date")
    return [
        Rule("V04", "line", "procedure_code well-formed", _malformed_procedure_code()),
        Rule("V05", "line", "RVU row exists for year, HCPCS and pricing modifier", ~pl.col("rvu_found")),
        Rule("V06", "line", "modifiers well-formed and consistent with PCTC IND", _modifier_broken()),
        Rule("V07", "line", "units between 1 and 999", ~pl.col("units").is_between(1, 999).fill_null(False)),
        Rule("V08", "line", "charge > 0", ~(pl.col("charge_cents") > 0).fill_null(False)),
        Rule(
            "V09",
            "line",
            "service_date not in the future, not before date of birth",
            service.is_null() | (service > pl.lit(run_date)) | (service < pl.col("patient_dob")).fill_null(False),
        ),
        Rule(
            "V10",
            "line",
            "received within one year of service (timely filing)",
            _filed_late(),
        ),
        Rule(
            "V11",
            "line",
            "line place of service, when present, is a CMS POS code",
            _line_pos_not_pos(),
        ),
        Rule("V12", "line", "no duplicate procedure, modifiers and date within a claim", _duplicate_line()),
        Rule("V14", "line", "GPCI row exists for year, MAC and locality", ~pl.col("gpci_found")),
    ]


def _diagnosis_broken() -> pl.Expr:
    """V03: diagnosis_1 absent or malformed, or another diagnosis present and malformed."""
    first = per_distinct("diagnosis_1", lambda code: ~is_present(code) | ~code.str.contains(ICD10_CM).fill_null(False))
    others = (_malformed_if_present(d, ICD10_CM) for d in ("diagnosis_2", "diagnosis_3", "diagnosis_4"))
    return first | pl.any_horizontal(others)


def claim_rules() -> list[Rule]:
    return [
        Rule(
            "V01",
            "claim",
            "billing_npi valid (10 digits, 1/2, Luhn with 80840)",
            per_distinct("billing_npi", invalid_npi),
        ),
        Rule(
            "V02",
            "claim",
            "rendering_npi, when present, valid",
            per_distinct("rendering_npi", lambda npi: is_present(npi) & invalid_npi(npi)),
        ),
        Rule(
            "V03",
            "claim",
            "diagnosis_1 present; every diagnosis well-formed ICD-10-CM",
            _diagnosis_broken(),
        ),
        Rule("V11", "claim", "claim place of service is a CMS POS code", _not_pos("place_of_service")),
        Rule(
            "V13",
            "claim",
            "total_charge equals the sum of line charges",
            (pl.col("total_charge_cents") != pl.col("line_charge_cents")).fill_null(True),
        ),
        Rule("V15", "claim", "at least one line", pl.col("line_count") == 0),
    ]
