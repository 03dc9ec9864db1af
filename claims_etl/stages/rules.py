"""Validation rules V01-V17 (docs/spec.md §5) as data: each a frozen record whose expression is true
where a row breaks it. Line rules run on keyed lines (keying.key_lines), claim rules on claims with
their line aggregates. Nulls never pass a rule silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

import polars as pl

from claims_etl.settings.rules_file import RulesConfig
from claims_etl.stages.columns import (
    FACILITY_POS,
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
MAX_LINE_NUMBER = 50  # docs/spec.md §1: staging.claim_lines.line_number is 1..50
# Luhn over "80840" + the first nine NPI digits: the prefix's digits always contribute 24.
NPI_PREFIX_LUHN_SUM = 24


@dataclass(frozen=True)
class Rule:
    id: str
    level: Literal["claim", "line"]
    description: str
    broken: pl.Expr
    severity: Literal["reject", "warn"] = "reject"  # warn: reported, never rejects (rules file)


DEFAULT_CONFIG = RulesConfig()
UNREPRESENTABLE = (
    "every value representable: dates within 0001-01-01..9999-12-31, money finite and under 10^10, "
    "batch_id at most 65,535 UTF-8 bytes"
)


def invalid_npi(npi: pl.Expr, *, luhn: bool = True) -> pl.Expr:
    """True where the NPI is not 10 digits starting 1 or 2 with a valid Luhn check digit (with `luhn`
    off, where it is not 10 digits starting 1 or 2)."""
    if not luhn:
        return ~npi.str.contains(NPI_SHAPE).fill_null(False)
    digit = [npi.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(10)]
    doubled = [(d * 2 - 9 * (d >= 5).cast(pl.Int32)) for d in digit[0:9:2]]  # 2d, minus 9 past 9
    total = pl.sum_horizontal(*doubled, *digit[1:9:2]) + NPI_PREFIX_LUHN_SUM
    check_digit = (10 - total % 10) % 10
    well_formed = npi.str.contains(NPI_SHAPE).fill_null(False)
    return ~(well_formed & (check_digit == digit[9]).fill_null(False))


def _malformed_if_present(column: str, pattern: str) -> pl.Expr:
    return per_distinct(column, lambda value: is_present(value) & ~value.str.contains(pattern).fill_null(False))


def _not_pos(column: str, codes: tuple[str, ...]) -> pl.Expr:
    return ~pl.col(column).is_in(codes).fill_null(False)


def _line_pos_not_pos(codes: tuple[str, ...]) -> pl.Expr:
    """V11 on a line: its place of service, when present, is not a CMS POS code (or not in `codes`)."""
    return per_distinct("place_of_service", lambda pos: is_present(pos) & ~pos.is_in(codes).fill_null(False))


def _malformed_procedure_code() -> pl.Expr:
    return per_distinct("procedure_code", lambda code: ~code.str.contains(PROCEDURE_CODE).fill_null(False))


def _filed_late(days: int = 365) -> pl.Expr:
    """V10: received more than a year after service (29 Feb + 1 year = 28 Feb), or with a payer's
    `days` other than 365, more than that many days after; one offset per distinct date."""
    span = "1y" if days == 365 else f"{days}d"  # 365: the contract's calendar year
    deadline = by_value("service_date", lambda service: service.dt.offset_by(span), null=pl.lit(None, pl.Date))
    return (pl.col("received_date") > deadline).fill_null(True)


def _modifier_broken() -> pl.Expr:
    """V06: malformed modifier, 26 with TC, or 26 (TC) on a code the release in force has no 26 (TC)
    row for: CMS publishes a row for every split it pays (lab interpretation codes have a 26 row only)."""
    malformed = (pl.col("modifier_flags") & MALFORMED_MODIFIER) != 0
    has_26, has_tc = has_modifier("26"), has_modifier("TC")
    return malformed | (has_26 & has_tc) | (has_26 & ~pl.col("pc_row")) | (has_tc & ~pl.col("tc_row"))


def _duplicate_line() -> pl.Expr:
    """V12: same procedure, modifiers and date on two lines of one claim (absent equals absent).
    Modifiers compare by their numbers (`keying.value_number`): equal exactly when the text is."""
    modifiers = [modifier_number(m).alias(m) for m in MODIFIERS]
    return pl.struct("claim_id", "procedure_code", *modifiers, "service_date").is_duplicated()


def _unrepresentable() -> pl.Expr:
    """V16 at one level: the source row held a value the extract could not hand on (a date outside
    0001-9999, non-finite or oversized money, an oversized batch_id: staging.etl_claims flags them)."""
    return pl.col("unrepresentable").fill_null(False)


def pos_codes(config: RulesConfig) -> tuple[str, ...]:
    """V11's place-of-service codes: the rules file's, else CMS's."""
    return POS_CODES if config.V11.codes is None else tuple(config.V11.codes)


def facility_pos(config: RulesConfig) -> tuple[str, ...]:
    """§4.1's facility places of service: the rules file's `pricing.facility_pos`, else the contract's."""
    return FACILITY_POS if config.pricing.facility_pos is None else tuple(config.pricing.facility_pos)


def configured(rules: list[Rule], config: RulesConfig, level: Literal["claim", "line"]) -> list[Rule]:
    """The contract's `rules` as the rules file sets them (disabled ones left out, severities set),
    then the file's enabled custom rules of `level`."""
    kept = []
    for rule in rules:
        settings = config.rule(rule.id)
        if settings.enabled:
            kept.append(rule if settings.severity == rule.severity else replace(rule, severity=settings.severity))
    custom = [
        Rule(c.id, c.level, c.description, c.broken(), c.severity)
        for c in config.custom
        if c.enabled and c.level == level
    ]
    return kept + custom


def line_rules(run_date: date, config: RulesConfig = DEFAULT_CONFIG) -> list[Rule]:
    """The line rules in force: V04-V12, V14, V16 and V17 with the rules file's settings, and its custom
    line rules."""
    service = pl.col("service_date")
    units = config.V07
    contract = [
        Rule("V04", "line", "procedure_code well-formed", _malformed_procedure_code()),
        Rule("V05", "line", "RVU row exists for year, HCPCS and pricing modifier", ~pl.col("rvu_found")),
        Rule("V06", "line", "modifiers well-formed; 26/TC only where the release has that row", _modifier_broken()),
        Rule(
            "V07",
            "line",
            "units between min and max (1 and 999 unless a rules file sets them)",
            ~pl.col("units").is_between(units.min, units.max).fill_null(False),
        ),
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
            "received within one year of service, or a rules file's days (timely filing)",
            _filed_late(config.V10.days),
        ),
        Rule(
            "V11",
            "line",
            "line place of service, when present, is a CMS POS code (or in the rules file's codes)",
            _line_pos_not_pos(pos_codes(config)),
        ),
        Rule("V12", "line", "no duplicate procedure, modifiers and date within a claim", _duplicate_line()),
        Rule("V14", "line", "GPCI row exists for year, MAC and locality", ~pl.col("gpci_found")),
        Rule("V16", "line", UNREPRESENTABLE, _unrepresentable()),
        Rule(
            "V17",
            "line",
            f"line_number between 1 and {MAX_LINE_NUMBER} (the contract's line numbers)",
            ~pl.col("line_number").is_between(1, MAX_LINE_NUMBER).fill_null(False),
        ),
    ]
    return configured(contract, config, "line")


def _diagnosis_broken() -> pl.Expr:
    """V03: diagnosis_1 absent or malformed, or another diagnosis present and malformed."""
    first = per_distinct("diagnosis_1", lambda code: ~is_present(code) | ~code.str.contains(ICD10_CM).fill_null(False))
    others = (_malformed_if_present(d, ICD10_CM) for d in ("diagnosis_2", "diagnosis_3", "diagnosis_4"))
    return first | pl.any_horizontal(others)


def claim_rules(config: RulesConfig = DEFAULT_CONFIG) -> list[Rule]:
    """The claim rules in force: V01-V03, V11, V13, V15, V16 with the rules file's settings, and its
    custom claim rules."""
    contract = [
        Rule(
            "V01",
            "claim",
            "billing_npi valid (10 digits, 1/2, Luhn with 80840)",
            per_distinct("billing_npi", lambda npi: invalid_npi(npi, luhn=config.V01.luhn)),
        ),
        Rule(
            "V02",
            "claim",
            "rendering_npi, when present, valid",
            per_distinct("rendering_npi", lambda npi: is_present(npi) & invalid_npi(npi, luhn=config.V02.luhn)),
        ),
        Rule(
            "V03",
            "claim",
            "diagnosis_1 present; every diagnosis well-formed ICD-10-CM",
            _diagnosis_broken(),
        ),
        Rule(
            "V11", "claim", "claim place of service is a CMS POS code", _not_pos("place_of_service", pos_codes(config))
        ),
        Rule(
            "V13",
            "claim",
            "total_charge equals the sum of line charges",
            (pl.col("total_charge_cents") != pl.col("line_charge_cents")).fill_null(True),
        ),
        Rule("V15", "claim", "at least one line", pl.col("line_count") == 0),
        Rule("V16", "claim", UNREPRESENTABLE, _unrepresentable()),
    ]
    return configured(contract, config, "claim")


def parameters(config: RulesConfig, rule_id: str) -> dict[str, Any]:
    """A contract rule's parameters in force (`claims-etl rules list`), defaults resolved."""
    if rule_id in ("V01", "V02"):
        return {"luhn": (config.V01 if rule_id == "V01" else config.V02).luhn}
    if rule_id == "V07":
        return {"min": config.V07.min, "max": config.V07.max}
    if rule_id == "V10":
        return {"days": config.V10.days}
    if rule_id == "V11":
        return {"codes": list(pos_codes(config))}
    return {}


def rule_table(config: RulesConfig = DEFAULT_CONFIG) -> list[dict[str, Any]]:
    """Every rule, contract and custom, enabled or not: id, level, severity, enabled, parameters,
    description (`claims-etl rules list`), in id order; `pricing` last, with the facility set."""
    every = [*claim_rules(RulesConfig()), *line_rules(date(2000, 1, 1), RulesConfig())]
    rows: dict[str, dict[str, Any]] = {}
    for rule in every:
        settings = config.rule(rule.id)
        row = rows.setdefault(
            rule.id,
            {
                "id": rule.id,
                "level": rule.level,
                "severity": settings.severity,
                "enabled": settings.enabled,
                "parameters": parameters(config, rule.id),
                "description": rule.description,
            },
        )
        if row["level"] != rule.level:
            row["level"] = "claim+line"
    for custom in config.custom:
        rows[custom.id] = {
            "id": custom.id,
            "level": custom.level,
            "severity": custom.severity,
            "enabled": custom.enabled,
            "parameters": {"expression": custom.expression},
            "description": custom.description,
        }
    pricing = {
        "id": "pricing",
        "level": "line",
        "severity": "",
        "enabled": True,
        "parameters": {"facility_pos": list(facility_pos(config))},
        "description": "facility places of service (docs/spec.md §4.1); changing them changes prices",
    }
    return [*(rows[rule_id] for rule_id in sorted(rows)), pricing]
