"""The way the replaced system did the job, for comparison: one claim at a time. Per claim: a query
for the claim, a query for its lines, validation and pricing in plain Python (`Decimal`), one INSERT
per row into the warehouse, one status UPDATE, one commit. Reference data is preloaded into dicts
(the old system's in-memory RVU cache). It writes the same rows as the engine, so its output doubles
as an independent check of the vectorized stages (see tests/integration/pipeline/test_row_at_a_time.py).
`check_frames` runs the same per-claim code on frames and `ReferenceFrames` (no database), for the
golden tests (tests/unit/stages/test_price_medicare.py).

It honours the same rules file as the engine (`settings.rules()`, docs/spec.md §5.1): each rule's
enabled/severity and parameters are applied here in plain Python; a custom rule's SQL expression is
evaluated with `polars.sql_expr` on a one-row frame per claim or line (the same parser as the engine,
but row by row), and warn rules' hits on priced claims are written to claim_warnings.

It imports nothing from the engine's stages but the rules file's parsed form: the contract's constants
(POS codes, patterns, the facility set) are restated from docs/spec.md, so a change to the engine's
copy cannot silently change the oracle's answer too.

Pricing, docs/spec.md §4 with steps 4a-4c (issue 28), as read here where the text leaves room:

- Money is `Decimal` dollars. A line's amount before its adjustment factor is kept per unit, as its
  first unit's and each further unit's amount (only the top line's first unit differs), exact to the
  hundredth of a cent; it is multiplied by the adjustment factor and rounded half up once, then capped
  at the charge (§4.5).
- 4a groups the payable lines (status A, R, T) of one claim, service date and MULT PROC 4, 6 or 7.
  PC/TC per unit: a `26` row is all PC, a `TC` row all TC; a blank or `53` row's PC is the fee of the
  code's `26` row of the same release, priced with the line's GPCI row, facility setting and conversion
  factor (the one the line is priced with, QP or not, not the `26` row's own column: CMS carries one
  factor per release, so they agree on CMS's files), at most the line's fee; 0 without a `26` row.
  The top line for TC and the top line for PC (4 only) are ranked separately by the per-unit amount,
  ties to the lowest line_number; rounding does not enter the ranking (fees are whole cents).
- "A line with a reduced unit" is read as a line that 4a pays less than fee x units: a unit whose TC
  and PC are both 0 where reduced (a `26` line's TC under MULT PROC 6) is not "reduced", so its line
  keeps an empty note.
- 4b: a row is capped when any of its three OPPS columns is non-zero (null is 0), whatever the place
  of service; the OPPS amount then uses the OPPS PE column of the line's setting, even if that one is 0.
  It is rounded to the cent (as the spec's formula says) and compared with each unit's exact amount
  after 4a; `OPPS_CAP` only when it is strictly lower for some unit. Non-payable lines are capped too,
  but pay 0 and say `STATUS_<c>` whatever 4a-4c would say.
- 4c counts every line of the claim with MULT PROC 3 (5) on the date, payable or not (the spec excludes
  non-payable lines from 4a only); a payable one then says `NO_MPPR_3` (`NO_MPPR_5`).
- 4a and 4b notes join with `+` (`MPPR_DI+OPPS_CAP`). A MULT PROC 3 or 5 line the cap lowers says
  `OPPS_CAP` alone: the note names what decided the amount, the spec lists no combined value, and
  `OPPS_CAP+NO_MPPR_3` would not fit the warehouse's `pricing_note varchar(16)`.
- 4a and 4b do not change `adjustment_factor` (it is reported as in §4), and a MULT PROC 2 line's
  ranking (§4) is unchanged: fee x units x the factors before the multiple procedure one.

V06 (docs/spec.md §5): a `26` (`TC`) among the line's modifiers needs a row for the code with modifier
`26` (`TC`) in the release in force on the service date; `26` and `TC` together always fail.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

import polars as pl
import psycopg

from claims_etl.settings import Settings
from claims_etl.settings.rules_file import RulesConfig, custom_columns
from claims_etl.targets import connect_target

if TYPE_CHECKING:
    from claims_etl.reference import ReferenceFrames

CENT = Decimal("0.01")
E4 = Decimal(10_000)
# docs/spec.md §4.1, §4.2 and §5, restated (see the module docstring).
FACILITY_POS = ("02", "19", "21", "22", "23", "24", "26", "31", "34", "41", "42", "51", "52", "53", "56", "61")
PRICING_MODIFIERS = ("26", "TC", "53")
PAYABLE_STATUS = ("A", "R", "T")
POS_CODES = tuple(
    f"{code:02d}"
    for code in [*range(1, 28), *range(31, 35), 41, 42, *range(49, 59), 60, 61, 62, 65, 66, 71, 72, 81, 99]
)
MODIFIER_PATTERN = r"^[A-Z0-9]{2}$"
ICD10_CM = r"^[A-Z][0-9][A-Z0-9](?:\.?[A-Z0-9]{1,4})?$"
PROCEDURE_CODE = r"^(?:[0-9]{5}|[0-9]{4}[FTU]|[A-V][0-9]{4})$"
NPI_SHAPE = r"^[12][0-9]{9}$"
# Step 4a: MULT PROC -> (share of TC paid after the first, share of PC paid after the first or None
# where the PC is not reduced, the note).
DIAGNOSTIC_MPPR = {
    "4": (Decimal("0.50"), Decimal("0.95"), "MPPR_DI"),
    "6": (Decimal("0.75"), None, "MPPR_DC"),
    "7": (Decimal("0.80"), None, "MPPR_DO"),
}
NOT_APPLIED_MPPR = ("3", "5")  # step 4c
RVU_NUMBERS = (
    "work_rvu",
    "nonfac_pe_rvu",
    "facility_pe_rvu",
    "mp_rvu",
    "conv_factor",
    "qp_conv_factor",
    "opps_nonfac_pe_rvu",
    "opps_facility_pe_rvu",
    "opps_mp_rvu",
)
OPPS_RVUS = ("opps_nonfac_pe_rvu", "opps_facility_pe_rvu", "opps_mp_rvu")
CLAIM_SQL = (
    "SELECT claim_id, batch_id, patient_dob, billing_npi, rendering_npi, mac, locality, place_of_service, "
    "diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4, total_charge, received_date FROM staging.claims "
    "WHERE claim_id = %s"
)
LINES_SQL = (
    "SELECT line_number, service_date, procedure_code, modifier_1, modifier_2, modifier_3, modifier_4, units, "
    "charge, place_of_service FROM staging.claim_lines WHERE claim_id = %s ORDER BY line_number"
)


class Reference(NamedTuple):
    """The fee schedule as dicts: RVU rows by (release, hcpcs, modifier) with their numbers as `Decimal`
    (the OPPS RVUs 0 where absent), GPCI rows by (release, mac, locality) as {"pw", "pe", "mp"}, each
    year's releases as (effective date, label) in date order, and the QP list as (year, npi)."""

    rvu: dict[tuple[str | None, str, str], dict[str, Any]]  # release None: none in force (never found)
    gpci: dict[tuple[str | None, str, str], dict[str, Decimal]]
    releases: dict[int, list[tuple[date, str]]]
    qp: set[tuple[int, str]]


def _present(value: str | None) -> TypeGuard[str]:
    return value is not None and value.strip() != ""


def _npi_ok(npi: str | None, *, luhn: bool = True) -> bool:
    if npi is None or not re.fullmatch(NPI_SHAPE, npi):
        return False
    if not luhn:
        return True
    total = 24
    for i, ch in enumerate(npi[:9]):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def _plus_one_year(day: date) -> date:
    return day.replace(year=day.year + 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year + 1)


def _mods(line: dict[str, Any]) -> list[str | None]:
    return [line[f"modifier_{i}"] for i in range(1, 5)]


def _pricing_mod(line: dict[str, Any]) -> str:
    return next((m for m in _mods(line) if m in PRICING_MODIFIERS), "")


def _release(ref: Reference, day: date) -> str | None:
    """The release in force on `day`: the latest of its year whose effective date is on or before it."""
    in_force = [release for effective, release in ref.releases.get(day.year, []) if effective <= day]
    return in_force[-1] if in_force else None


def _deadline(service: date, days: int) -> date:
    return _plus_one_year(service) if days == 365 else service + timedelta(days=days)  # 365: a calendar year


def _custom_broken(expression: str, row: dict[str, Any], columns: Any) -> bool:
    """A custom rule on one claim or line: its expression over a one-row frame (null: not broken)."""
    value = pl.DataFrame([{name: row.get(name) for name in columns}], schema=columns).select(pl.sql_expr(expression))
    return value.item() is True


def validate_claim(  # noqa: PLR0912, PLR0915  (one branch per rule, as the replaced system had)
    claim: dict[str, Any],
    lines: list[dict[str, Any]],
    ref: Reference,
    run_date: date,
    config: RulesConfig | None = None,
) -> tuple[list[str], list[str]]:
    """The ids of the rules the claim breaks that reject it, and of those that only warn."""
    config = config or RulesConfig()
    pos_codes = POS_CODES if config.V11.codes is None else tuple(config.V11.codes)
    broken: set[str] = set()
    if not _npi_ok(claim["billing_npi"], luhn=config.V01.luhn):
        broken.add("V01")
    if _present(claim["rendering_npi"]) and not _npi_ok(claim["rendering_npi"], luhn=config.V02.luhn):
        broken.add("V02")
    diagnoses = [claim[f"diagnosis_{i}"] for i in range(1, 5)]
    if not _present(diagnoses[0]) or any(_present(d) and not re.search(ICD10_CM, d) for d in diagnoses):
        broken.add("V03")
    if claim["place_of_service"] not in pos_codes:
        broken.add("V11")
    if claim["total_charge"] != sum((line["charge"] for line in lines), Decimal(0)):
        broken.add("V13")
    if not lines:
        broken.add("V15")
    seen: set[tuple[Any, ...]] = set()
    for line in lines:
        release, code, mods = _release(ref, line["service_date"]), line["procedure_code"], _mods(line)
        if not re.search(PROCEDURE_CODE, code):
            broken.add("V04")
        if (release, code, _pricing_mod(line)) not in ref.rvu:
            broken.add("V05")
        if (
            any(_present(m) and not re.search(MODIFIER_PATTERN, m) for m in mods)
            or ("26" in mods and "TC" in mods)
            # a 26 or TC only where the release in force publishes the code with it (issue 28)
            or any(split in mods and (release, code, split) not in ref.rvu for split in ("26", "TC"))
        ):
            broken.add("V06")
        if not config.V07.min <= line["units"] <= config.V07.max:
            broken.add("V07")
        if line["charge"] <= 0:
            broken.add("V08")
        dob = claim["patient_dob"]
        if line["service_date"] > run_date or (dob is not None and line["service_date"] < dob):
            broken.add("V09")
        if claim["received_date"] > _deadline(line["service_date"], config.V10.days):
            broken.add("V10")
        if _present(line["place_of_service"]) and line["place_of_service"] not in pos_codes:
            broken.add("V11")
        key = (code, *[m if _present(m) else None for m in mods], line["service_date"])
        if key in seen:
            broken.add("V12")
        seen.add(key)
        if (release, claim["mac"], claim["locality"]) not in ref.gpci:
            broken.add("V14")
        if not 1 <= line["line_number"] <= 50:  # docs/spec.md §1
            broken.add("V17")
    broken = {rule_id for rule_id in broken if config.rule(rule_id).enabled}
    severity = {rule_id: config.rule(rule_id).severity for rule_id in broken}
    claim_row = claim | {
        "total_charge_cents": int(claim["total_charge"] * 100),
        "line_count": len(lines),
        "line_charge_cents": sum(int(line["charge"] * 100) for line in lines),
    }
    for rule in (c for c in config.custom if c.enabled):
        if rule.level == "claim":
            hit = _custom_broken(rule.expression, claim_row, custom_columns("claim"))
        else:
            rows = [
                line
                | {"claim_id": claim["claim_id"], "charge_cents": int(line["charge"] * 100)}
                | {"patient_dob": claim["patient_dob"], "received_date": claim["received_date"]}
                for line in lines
            ]
            hit = any(_custom_broken(rule.expression, row, custom_columns("line")) for row in rows)
        if hit:
            broken.add(rule.id)
            severity[rule.id] = rule.severity
    return (
        sorted(rule_id for rule_id in broken if severity[rule_id] == "reject"),
        sorted(rule_id for rule_id in broken if severity[rule_id] == "warn"),
    )


def _pfs_amount(work: Decimal, pe: Decimal, mp: Decimal, g: dict[str, Decimal], conversion_factor: Decimal) -> Decimal:
    """(WORK x PW GPCI + PE x PE GPCI + MP x MP GPCI) x CF, rounded half up to the cent (§4.3, §4b)."""
    return ((work * g["pw"] + pe * g["pe"] + mp * g["mp"]) * conversion_factor).quantize(CENT, ROUND_HALF_UP)


def _price_line(
    claim: dict[str, Any], line: dict[str, Any], ref: Reference, facility_pos: tuple[str, ...]
) -> dict[str, Any]:
    """One line's fee, factors before the multiple procedure one, PC/TC split and OPPS amount."""
    npi = claim["rendering_npi"] if claim["rendering_npi"] is not None else claim["billing_npi"]
    release, mods = _release(ref, line["service_date"]), _mods(line)
    modifier = _pricing_mod(line)
    row = ref.rvu[(release, line["procedure_code"], modifier)]
    g = ref.gpci[(release, claim["mac"], claim["locality"])]
    as_qp = (line["service_date"].year, npi) in ref.qp and row["qp_conv_factor"] is not None
    conversion_factor = row["qp_conv_factor"] if as_qp else row["conv_factor"]
    pos = line["place_of_service"] if _present(line["place_of_service"]) else claim["place_of_service"]
    facility = pos in facility_pos
    pe = row["facility_pe_rvu"] if facility else row["nonfac_pe_rvu"]
    fee = _pfs_amount(row["work_rvu"], pe, row["mp_rvu"], g, conversion_factor)
    factor = Decimal(1)
    if "50" in mods and row["bilat_surg"] == "1":
        factor *= Decimal("1.5")
    if any(m in ("80", "81", "82") for m in mods):
        factor *= Decimal("0.16")
    if "AS" in mods:
        factor *= Decimal("0.136")
    if "62" in mods and row["co_surg"] in ("1", "2"):
        factor *= Decimal("0.625")
    # Step 4a's split of one unit's fee into its professional and technical parts.
    if modifier == "26":
        pc = fee
    elif modifier == "TC":
        pc = Decimal(0)
    else:
        professional = ref.rvu.get((release, line["procedure_code"], "26"))
        pc = Decimal(0)
        if professional is not None:
            professional_pe = professional["facility_pe_rvu"] if facility else professional["nonfac_pe_rvu"]
            pc = _pfs_amount(professional["work_rvu"], professional_pe, professional["mp_rvu"], g, conversion_factor)
        pc = min(pc, fee)
    # Step 4b's OPPS amount, for rows carrying any OPPS RVU.
    opps = None
    if any(row[column] for column in OPPS_RVUS):
        opps_pe = row["opps_facility_pe_rvu"] if facility else row["opps_nonfac_pe_rvu"]
        opps = _pfs_amount(row["work_rvu"], opps_pe, row["opps_mp_rvu"], g, conversion_factor)
    return line | {
        "fee": fee,
        "factor": factor,
        "row": row,
        "facility": facility,
        "release": release,
        "qp": as_qp,
        "payable": row["status_code"] in PAYABLE_STATUS,
        "pc": pc,
        "tc": fee - pc,
        "opps": opps,
        # What one unit is paid before the adjustment factor: the first unit, and each further one.
        "first_unit": fee,
        "other_unit": fee,
        "notes": [],
    }


def _multiple_procedure(priced: list[dict[str, Any]]) -> None:
    """Step 4, MULT PROC 2: every line but the day's top one (fee x units x factors) at 0.5."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for line in priced:
        if line["row"]["mult_proc"] == "2":
            by_day.setdefault(line["service_date"], []).append(line)
    for group in by_day.values():
        top = max(group, key=lambda ln: (ln["fee"] * ln["units"] * ln["factor"], -ln["line_number"]))
        for line in group:
            if line is not top:
                line["factor"] *= Decimal("0.5")


def _diagnostic_mppr(priced: list[dict[str, Any]]) -> None:
    """Step 4a: per claim, date and MULT PROC 4/6/7, the first unit of the top-TC line keeps its TC,
    every other unit's TC is reduced; for 4 the same with PC at 95% around the top-PC line."""
    groups: dict[tuple[date, str], list[dict[str, Any]]] = {}
    for line in priced:
        if line["payable"] and line["row"]["mult_proc"] in DIAGNOSTIC_MPPR:
            groups.setdefault((line["service_date"], line["row"]["mult_proc"]), []).append(line)
    for (_, indicator), group in groups.items():
        tc_share, pc_share, note = DIAGNOSTIC_MPPR[indicator]
        tc_top = min(group, key=lambda ln: (-ln["tc"], ln["line_number"]))
        pc_top = min(group, key=lambda ln: (-ln["pc"], ln["line_number"]))
        for line in group:
            reduced_tc = line["tc"] * tc_share
            reduced_pc = line["pc"] if pc_share is None else line["pc"] * pc_share
            first_tc = line["tc"] if line is tc_top else reduced_tc
            first_pc = line["pc"] if line is pc_top else reduced_pc
            line["first_unit"], line["other_unit"] = first_tc + first_pc, reduced_tc + reduced_pc
            if _amount(line) < line["fee"] * line["units"]:
                line["notes"].append(note)


def _opps_cap(priced: list[dict[str, Any]]) -> None:
    """Step 4b: each unit paid at most the OPPS amount, after 4a."""
    for line in priced:
        cap = line["opps"]
        if cap is None:
            continue
        units = [line["first_unit"]] + ([line["other_unit"]] if line["units"] > 1 else [])
        if any(cap < unit for unit in units):
            line["notes"].append("OPPS_CAP")
        line["first_unit"], line["other_unit"] = min(line["first_unit"], cap), min(line["other_unit"], cap)


def _not_applied_notes(priced: list[dict[str, Any]]) -> None:
    """Step 4c: MULT PROC 3 and 5 lines sharing their date with another of the same indicator."""
    count: dict[tuple[date, str], int] = {}
    for line in priced:
        key = (line["service_date"], line["row"]["mult_proc"])
        count[key] = count.get(key, 0) + 1
    for line in priced:
        indicator = line["row"]["mult_proc"]
        capped = "OPPS_CAP" in line["notes"]  # the cap decided the amount: its note wins (docstring)
        if indicator in NOT_APPLIED_MPPR and count[(line["service_date"], indicator)] > 1 and not capped:
            line["notes"].append(f"NO_MPPR_{indicator}")


def _amount(line: dict[str, Any]) -> Decimal:
    """The line's exact amount before its adjustment factor (§4.5)."""
    amount: Decimal = line["first_unit"] + (line["units"] - 1) * line["other_unit"]
    return amount


def price_claim(
    claim: dict[str, Any], lines: list[dict[str, Any]], ref: Reference, facility_pos: tuple[str, ...] = FACILITY_POS
) -> list[dict[str, Any]]:
    """Every line of an accepted claim priced per docs/spec.md §4: `fee`, `factor`, `allowed`, `note`."""
    priced = [_price_line(claim, line, ref, facility_pos) for line in lines]
    _multiple_procedure(priced)
    _diagnostic_mppr(priced)
    _opps_cap(priced)
    _not_applied_notes(priced)
    for line in priced:
        allowed = min(line["charge"], (_amount(line) * line["factor"]).quantize(CENT, ROUND_HALF_UP))
        line["allowed"] = allowed if line["payable"] else Decimal(0)
        line["note"] = "+".join(line["notes"]) if line["payable"] else f"STATUS_{line['row']['status_code']}"
    return priced


def _rvu_row(row: dict[str, Any]) -> dict[str, Any]:
    """An RVU row with every number a `Decimal`, OPPS RVUs 0 where the table or frame has none."""
    numbers = {column: row.get(column) for column in RVU_NUMBERS}
    for column in OPPS_RVUS:
        numbers[column] = numbers[column] or Decimal(0)
    return row | numbers


def load_reference(connection: psycopg.Connection[Any]) -> Reference:
    with connection.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        # every column: the OPPS RVUs are read where the table has them (a database from before them
        # prices without the cap)
        rvu = {
            (r["release"], r["hcpcs"], r["modifier"]): _rvu_row(r) for r in cursor.execute("SELECT * FROM staging.rvu")
        }
        gpci = {
            (r["release"], r["mac"], r["locality"]): {"pw": r["pw_gpci"], "pe": r["pe_gpci"], "mp": r["mp_gpci"]}
            for r in cursor.execute("SELECT release, mac, locality, pw_gpci, pe_gpci, mp_gpci FROM staging.gpci")
        }
        releases: dict[int, list[tuple[date, str]]] = {}
        for r in cursor.execute(
            "SELECT year, effective_from, release FROM staging.reference_releases ORDER BY effective_from"
        ):
            releases.setdefault(r["year"], []).append((r["effective_from"], r["release"]))
        qp = {(r["year"], r["npi"]) for r in cursor.execute("SELECT year, npi FROM staging.qp_npis")}
    return Reference(rvu, gpci, releases, qp)


def reference_from_frames(frames: ReferenceFrames) -> Reference:
    """`load_reference` from the engine's in-memory fee schedule (numbers x 10^4 back to `Decimal`)."""

    def number(value: int | None) -> Decimal | None:
        return None if value is None else Decimal(value) / E4

    rvu = {}
    for r in frames.rvu.iter_rows(named=True):
        row = r | {column: number(r.get(f"{column}_e4")) for column in RVU_NUMBERS}
        rvu[(r["release"], r["hcpcs"], r["modifier"])] = _rvu_row(row)
    gpci = {
        (r["release"], r["mac"], r["locality"]): {
            "pw": Decimal(r["pw_gpci_e4"]) / E4,
            "pe": Decimal(r["pe_gpci_e4"]) / E4,
            "mp": Decimal(r["mp_gpci_e4"]) / E4,
        }
        for r in frames.gpci.iter_rows(named=True)
    }
    releases: dict[int, list[tuple[date, str]]] = {}
    for r in frames.releases.sort("effective_from").iter_rows(named=True):
        releases.setdefault(r["year"], []).append((r["effective_from"], r["release"]))
    qp = {(r["year"], r["npi"]) for r in frames.qp_npis.iter_rows(named=True)}
    return Reference(rvu, gpci, releases, qp)


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


@dataclass(frozen=True)
class Checked:
    """What the oracle made of claims given as frames: the rejected claims (claim_id, rule_ids), the
    warnings of the priced ones (claim_id, rule_id), and the priced lines in the engine's
    `schemas.PRICED_LINES` names (claim_id, line_number, facility, fee_schedule_cents,
    adjustment_factor_e5, allowed_cents, pricing_note, rvu_release, cf_kind), each in claim order."""

    rejected: pl.DataFrame
    warnings: pl.DataFrame
    lines: pl.DataFrame


PRICED_LINE_COLUMNS = {
    "claim_id": pl.Int64,
    "line_number": pl.Int32,
    "facility": pl.Int8,
    "fee_schedule_cents": pl.Int64,
    "adjustment_factor_e5": pl.Int64,
    "allowed_cents": pl.Int64,
    "pricing_note": pl.String,
    "rvu_release": pl.String,
    "cf_kind": pl.String,
}


def check_frames(
    claims: pl.DataFrame,
    lines: pl.DataFrame,
    frames: ReferenceFrames,
    *,
    run_date: date,
    config: RulesConfig | None = None,
) -> Checked:
    """Validate and price claims in the engine's frame shapes (`schemas.CLAIMS`, `schemas.LINES`; money
    in cents) one claim at a time, with no database: the golden tests' second opinion."""
    config = config or RulesConfig()
    facility_pos = FACILITY_POS if config.pricing.facility_pos is None else tuple(config.pricing.facility_pos)
    ref = reference_from_frames(frames)
    lines_of: dict[int, list[dict[str, Any]]] = {}
    for line in lines.sort("claim_id", "line_number").iter_rows(named=True):
        lines_of.setdefault(line["claim_id"], []).append(line | {"charge": _money(line["charge_cents"])})
    rejected, warnings, priced_rows = [], [], []
    for claim in claims.sort("claim_id").iter_rows(named=True):
        claim_id = claim["claim_id"]
        claim_lines = lines_of.get(claim_id, [])
        rule_ids, warned = validate_claim(
            claim | {"total_charge": _money(claim["total_charge_cents"])}, claim_lines, ref, run_date, config
        )
        if rule_ids:
            rejected.append((claim_id, ",".join(rule_ids)))
            continue
        warnings += [(claim_id, rule_id) for rule_id in warned]
        for ln in price_claim(claim, claim_lines, ref, facility_pos):
            priced_rows.append(
                (
                    claim_id,
                    ln["line_number"],
                    int(ln["facility"]),
                    _cents(ln["fee"]),
                    int(ln["factor"] * 100_000),
                    _cents(ln["allowed"]),
                    ln["note"],
                    ln["release"],
                    "qp" if ln["qp"] else "non_qp",
                )
            )
    return Checked(
        rejected=pl.DataFrame(rejected, schema={"claim_id": pl.Int64, "rule_ids": pl.String}, orient="row"),
        warnings=pl.DataFrame(warnings, schema={"claim_id": pl.Int64, "rule_id": pl.String}, orient="row"),
        lines=pl.DataFrame(priced_rows, schema=PRICED_LINE_COLUMNS, orient="row"),
    )


def run(settings: Settings, limit: int) -> dict[str, Any]:
    """Process up to `limit` pending claims one at a time; returns counts and claims/s."""
    run_id, run_date = f"row-at-a-time-{int(time.time())}", settings.effective_run_date()
    config = settings.rules().config
    facility_pos = FACILITY_POS if config.pricing.facility_pos is None else tuple(config.pricing.facility_pos)
    target = connect_target(settings)
    cursor = target.connection.cursor()
    priced_claims = rejected = 0
    started = time.perf_counter()
    with psycopg.connect(settings.source_url.get_secret_value(), row_factory=psycopg.rows.dict_row) as source:
        ref = load_reference(source)
        ids = [
            r["claim_id"]
            for r in source.execute(
                "SELECT claim_id FROM staging.claims WHERE status = 'pending' ORDER BY claim_id LIMIT %s", [limit]
            )
        ]
        for claim_id in ids:
            claim: Any = source.execute(CLAIM_SQL, [claim_id]).fetchone()
            lines = list(source.execute(LINES_SQL, [claim_id]))
            now = datetime.now(UTC).replace(tzinfo=None)
            rule_ids, warned = validate_claim(claim, lines, ref, run_date, config)
            if rule_ids:
                cursor.execute(
                    f"INSERT INTO {target.table('rejected_claims')} VALUES (?, ?, ?, ?, ?)",
                    [claim_id, claim["batch_id"], run_id, ",".join(rule_ids), now],
                )
                rejected += 1
            else:
                priced = price_claim(claim, lines, ref, facility_pos)
                total = sum((ln["allowed"] for ln in priced), Decimal(0))
                cursor.execute(
                    f"INSERT INTO {target.table('priced_claims')} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        claim_id,
                        claim["batch_id"],
                        run_id,
                        claim["billing_npi"],
                        claim["mac"],
                        claim["locality"],
                        claim["place_of_service"],
                        len(priced),
                        str(claim["total_charge"]),
                        str(total),
                        now,
                    ],
                )
                for ln in priced:
                    cursor.execute(
                        f"INSERT INTO {target.table('priced_claim_lines')} VALUES ({', '.join('?' * 14)})",
                        [
                            claim_id,
                            ln["line_number"],
                            ln["procedure_code"],
                            ln["modifier_1"],
                            ln["units"],
                            str(ln["charge"]),
                            int(ln["facility"]),
                            str(ln["fee"]),
                            str(ln["factor"].quantize(Decimal("0.00001"))),
                            str(ln["allowed"]),
                            ln["note"],
                            run_id,
                            ln["release"],
                            "qp" if ln["qp"] else "non_qp",
                        ],
                    )
                for rule_id in warned:
                    cursor.execute(
                        f"INSERT INTO {target.table('claim_warnings')} VALUES (?, ?, ?)", [claim_id, rule_id, run_id]
                    )
                priced_claims += 1
            target.connection.commit()
            source.execute(
                "UPDATE staging.claims SET status = %s, run_id = %s, processed_at = now() WHERE claim_id = %s",
                ["rejected" if rule_ids else "processed", run_id, claim_id],
            )
            source.commit()
    seconds = time.perf_counter() - started
    target.close()
    claims = priced_claims + rejected
    return {
        "claims": claims,
        "priced": priced_claims,
        "rejected": rejected,
        "seconds": seconds,
        "claims_per_second": claims / seconds if seconds else 0.0,
    }
