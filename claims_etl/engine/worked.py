"""The worked computation of each priced line of one claim (`claims-etl explain`): docs/spec.md §4 and
4a-4c written out with the line's own numbers, in exact `Decimal` arithmetic.

Invariant: the amounts reported are the engine's (`stages.price.priced_detail`); this module redoes
each step from the inputs it displays, independently of the engine's integer code (the spec's
factors and percents are restated here, as the row-at-a-time oracle does), and reports every step
where its result differs from the engine's (`worked_steps.mismatches`): a difference is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# docs/spec.md §4.4: the adjustment factors, and the modifiers that ask for them.
BILATERAL, ASSISTANT, ASSISTANT_AS, CO_SURGEON, SECONDARY = (
    Decimal("1.5"),
    Decimal("0.16"),
    Decimal("0.136"),
    Decimal("0.625"),
    Decimal("0.5"),
)
ASSISTANT_MODIFIERS = ("80", "81", "82")
# docs/spec.md §4a: per diagnostic MULT PROC, the percent of a further unit's TC (PC) that is paid.
TC_PAID_PERCENT = {4: 50, 6: 75, 7: 80}
PC_PAID_PERCENT = {4: 95}
KIND_NAMES = {4: "diagnostic imaging", 6: "diagnostic cardiovascular", 7: "diagnostic ophthalmology"}
NOT_APPLIED = {3: "endoscopy base-code rules", 5: "therapy PE reduction"}
PRICING_MODIFIERS = {0: "", 1: "26", 2: "TC", 4: "53"}  # keying.PRICING_MODIFIER_BITS, by bit
PAYABLE = ("A", "R", "T")  # docs/spec.md §4.6


def shown(value: Decimal, places: int) -> str:
    """`value` exactly, with at least `places` decimals (CMS prints RVUs with 2, GPCIs with 3).

    >>> shown(Decimal("1.75"), 2), shown(Decimal("0.8690"), 3), shown(Decimal("71.5920"), 2), shown(Decimal(1), 3)
    ('1.75', '0.869', '71.592', '1.000')
    """
    quantized = value.quantize(Decimal(1).scaleb(-places))
    return f"{quantized if quantized == value else value.normalize():f}"


def money(value: Decimal) -> str:
    return shown(value, 2)


def e4(value: int | None) -> Decimal:
    """An RVU, GPCI or conversion factor column (x 10^4) as its exact decimal; null is 0."""
    return Decimal(value or 0).scaleb(-4)


def cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def round_half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def step(name: str, formula: str, amount: Decimal | None, *, places: int = 2) -> dict[str, Any]:
    """One step of a line's computation; `amount` exact, with at least `places` decimals (money 2)."""
    return {"step": name, "formula": formula, "amount": None if amount is None else shown(amount, places)}


@dataclass(frozen=True)
class Geography:
    """What the PFS formula multiplies RVUs by for one line: its GPCI row and conversion factor."""

    pw: Decimal
    pe: Decimal
    mp: Decimal
    cf: Decimal

    def amount(self, work: Decimal, pe: Decimal, mp: Decimal) -> tuple[str, Decimal]:
        """§4.3: round_half_up((work x PW + PE x PE GPCI + MP x MP GPCI) x CF, 2), and its formula."""
        value = round_half_up((work * self.pw + pe * self.pe + mp * self.mp) * self.cf)
        text = (
            f"({shown(work, 2)} x {shown(self.pw, 3)} + {shown(pe, 2)} x {shown(self.pe, 3)} + "
            f"{shown(mp, 2)} x {shown(self.mp, 3)}) x {shown(self.cf, 4)} = {money(value)}"
        )
        return text, value


@dataclass
class Line:
    """One line's inputs (the engine's detail row) and what this module works out for it."""

    row: Mapping[str, Any]
    geography: Geography
    fee: Decimal
    fee_text: str
    opps: Decimal | None = None
    opps_text: str = ""
    pc: Decimal = Decimal(0)
    pc_text: str = ""
    top_tc: bool = False
    top_pc: bool = False
    secondary: bool = False
    status: str = ""  # the RVU row's STATUS CODE
    amount: Decimal = Decimal(0)  # the units' amount before the adjustment factor (§4.5)
    factor: Decimal = Decimal(1)
    allowed: Decimal = Decimal(0)
    not_applied: bool = False  # §4c

    @property
    def number(self) -> int:
        return int(self.row["line_number"])

    @property
    def units(self) -> int:
        return int(self.row["units"])

    @property
    def kind(self) -> int:
        return int(self.row["multiple_procedure_kind"] or 0)

    @property
    def payable(self) -> bool:
        return bool(self.row["payable"])

    @property
    def tc(self) -> Decimal:
        return self.fee - self.pc

    @property
    def modifiers(self) -> list[str]:
        return present_modifiers(self.row)


def present_modifiers(row: Mapping[str, Any]) -> list[str]:
    values = (row.get(f"modifier_{n}") for n in range(1, 5))
    return [value.strip() for value in values if value is not None and value.strip()]


def _pe(row: Mapping[str, Any], prefix: str = "") -> Decimal:
    """The facility or non-facility PE RVU of the line's setting (§4.3), of the RVU, OPPS or 26 columns."""
    setting = "facility" if row["is_facility"] else "nonfac"
    return e4(row[f"{prefix}{setting}_pe_rvu_e4"])


def geography(row: Mapping[str, Any]) -> Geography:
    qp = row["cf_kind"] == "qp"
    factor = row["qp_conv_factor_e4"] if qp else row["conv_factor_e4"]
    return Geography(e4(row["pw_gpci_e4"]), e4(row["pe_gpci_e4"]), e4(row["mp_gpci_e4"]), e4(factor))


def _professional(line: Line, code: str) -> None:
    """§4a's PC of a unit: all of a 26 line, none of a TC line, else the code's 26 row priced for this
    line, at most the fee (0 without a 26 row)."""
    row = line.row
    modifier = PRICING_MODIFIERS.get(int(row["pricing_modifier_bit"] or 0), "")
    if modifier in ("26", "TC"):
        line.pc = line.fee if modifier == "26" else Decimal(0)
        line.pc_text = (
            f"the {modifier} row is all {'professional' if modifier == '26' else 'technical'}: PC {money(line.pc)}"
        )
        return
    if row["pc_work_rvu_e4"] is None:
        line.pc, line.pc_text = Decimal(0), f"the release has no {code}-26 row: PC 0.00"
        return
    text, value = line.geography.amount(e4(row["pc_work_rvu_e4"]), _pe(row, "pc_"), e4(row["pc_mp_rvu_e4"]))
    line.pc, line.pc_text = min(value, line.fee), f"the {code}-26 row priced here: {text}"
    if value > line.fee:
        line.pc_text += f", at most the fee: {money(line.fee)}"


def work_out(rows: Iterable[Mapping[str, Any]]) -> list[Line]:
    """Each line's fee, OPPS amount and PC from its displayed inputs, then the claim's groups: the top
    TC and PC line of each diagnostic MPPR group (§4a) and the secondary MULT PROC 2 lines (§4.4)."""
    lines = []
    for row in rows:
        where = geography(row)
        fee_text, fee = where.amount(e4(row["work_rvu_e4"]), _pe(row), e4(row["mp_rvu_e4"]))
        line = Line(row=row, geography=where, fee=fee, fee_text=fee_text)
        if row["opps_cents"] is not None:
            line.opps_text, line.opps = where.amount(
                e4(row["work_rvu_e4"]), _pe(row, "opps_"), e4(row["opps_mp_rvu_e4"])
            )
        _professional(line, str(row["procedure_code"]))
        lines.append(line)
    _mark_tops(lines)
    _mark_secondary(lines)
    _mark_not_applied(lines)
    return lines


def _best(candidates: Iterable[tuple[Hashable, Line]], rank: Callable[[Line], Decimal]) -> dict[Hashable, Line]:
    """Per group key, the line with the highest rank (ties: lowest line_number)."""
    best: dict[Hashable, Line] = {}
    for key, line in candidates:
        held = best.get(key)
        if held is None or (rank(line), -line.number) > (rank(held), -held.number):
            best[key] = line
    return best


def mppr_group(line: Line) -> tuple[date, int]:
    return (line.row["service_date"], line.kind)


def _mark_tops(lines: list[Line]) -> None:
    diagnostic = [line for line in lines if line.kind in TC_PAID_PERCENT and line.payable]
    for top in _best(((mppr_group(line), line) for line in diagnostic if line.tc > 0), lambda x: x.tc).values():
        top.top_tc = True
    for top in _best(((mppr_group(line), line) for line in diagnostic if line.pc > 0), lambda x: x.pc).values():
        top.top_pc = True


def factor_before_secondary(line: Line) -> tuple[Decimal, list[str], list[str]]:
    """§4.4's factors other than MULT PROC 2: their product, the text of each, and notes on a modifier
    that asks for a factor the RVU row does not allow."""
    modifiers, row = set(line.modifiers), line.row
    factor, parts, notes = Decimal(1), list[str](), list[str]()
    if "50" in modifiers and row["bilateral_surgery"]:
        factor, parts = factor * BILATERAL, [*parts, f"{BILATERAL} (bilateral: modifier 50, BILAT SURG 1)"]
    elif "50" in modifiers:
        notes.append("modifier 50 without BILAT SURG 1: no bilateral factor")
    assistant = [modifier for modifier in ASSISTANT_MODIFIERS if modifier in modifiers]
    if assistant:
        factor, parts = factor * ASSISTANT, [*parts, f"{ASSISTANT} (assistant at surgery: modifier {assistant[0]})"]
    if "AS" in modifiers:
        factor, parts = factor * ASSISTANT_AS, [*parts, f"{ASSISTANT_AS} (assistant at surgery: modifier AS)"]
    if "62" in modifiers and row["co_surgery"]:
        factor, parts = factor * CO_SURGEON, [*parts, f"{CO_SURGEON} (co-surgeon: modifier 62, CO-SURG 1 or 2)"]
    elif "62" in modifiers:
        notes.append("modifier 62 without CO-SURG 1 or 2: no co-surgeon factor")
    return factor, parts, notes


def reduction_rank(line: Line) -> Decimal:
    """§4.4: what ranks a MULT PROC 2 line: fee x units x the factors before the multiple procedure one."""
    return line.fee * line.units * factor_before_secondary(line)[0]


def _mark_not_applied(lines: list[Line]) -> None:
    """§4c: the MULT PROC 3 and 5 lines that share their date with another line of their indicator."""
    for line in lines:
        line.not_applied = line.kind in NOT_APPLIED and len(group_of(line, lines)) > 1


def _mark_secondary(lines: list[Line]) -> None:
    """§4.4: among the MULT PROC 2 lines of a date, all but the highest fee x units x factors."""
    subject = [line for line in lines if line.row["multiple_procedure"]]
    tops = _best(((line.row["service_date"], line) for line in subject), reduction_rank)
    for line in subject:
        line.secondary = tops[line.row["service_date"]] is not line


def group_of(line: Line, lines: Sequence[Line]) -> list[Line]:
    return [other for other in lines if other.kind == line.kind and mppr_group(other) == mppr_group(line)]
