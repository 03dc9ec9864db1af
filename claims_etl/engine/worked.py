"""The worked computation of each priced line of one claim (`claims-etl explain`): docs/spec.md §4 and
4a-4c written out with the line's own numbers, in exact `Decimal` arithmetic.

Invariant: the amounts reported are the engine's (`stages.price.priced_detail`); this module redoes
each step from the inputs it displays, independently of the engine's integer code (the spec's
factors and percents are restated here, as the row-at-a-time oracle does), and reports every step
where its result differs from the engine's (`mismatches`): a difference is a bug.
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


def _rank(line: Line) -> Decimal:
    """§4.4: what ranks a MULT PROC 2 line: fee x units x the factors before the multiple procedure one."""
    return line.fee * line.units * factor_before_secondary(line)[0]


def _mark_not_applied(lines: list[Line]) -> None:
    """§4c: the MULT PROC 3 and 5 lines that share their date with another line of their indicator."""
    for line in lines:
        line.not_applied = line.kind in NOT_APPLIED and len(group_of(line, lines)) > 1


def _mark_secondary(lines: list[Line]) -> None:
    """§4.4: among the MULT PROC 2 lines of a date, all but the highest fee x units x factors."""
    subject = [line for line in lines if line.row["multiple_procedure"]]
    tops = _best(((line.row["service_date"], line) for line in subject), _rank)
    for line in subject:
        line.secondary = tops[line.row["service_date"]] is not line


def group_of(line: Line, lines: Sequence[Line]) -> list[Line]:
    return [other for other in lines if other.kind == line.kind and mppr_group(other) == mppr_group(line)]


def _units(line: Line) -> str:
    return f"units 2-{line.units}" if line.units > 2 else "unit 2"


def _component_steps(line: Line, lines: Sequence[Line]) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """§4a for a payable diagnostic line: its PC/TC split, each part's reduction with its reason, and
    what its first unit and each further unit are paid."""
    kind, when = line.kind, line.row["service_date"]
    members = [str(other.number) for other in group_of(line, lines) if other.payable]  # the others take no part
    group = (
        f"MULT PROC {kind} ({KIND_NAMES[kind]}) on {when}: line{'s' if len(members) > 1 else ''} {', '.join(members)}"
    )
    tc_share, pc_share = TC_PAID_PERCENT[kind], PC_PAID_PERCENT.get(kind, 100)
    tc_reduced, pc_reduced = line.tc * tc_share / HUNDRED, line.pc * pc_share / HUNDRED
    tc_first, pc_first = (line.tc if line.top_tc else tc_reduced), (line.pc if line.top_pc else pc_reduced)
    split = f"{money(line.fee)} - {money(line.pc)}"
    steps = [
        step("professional_component", f"per unit: {line.pc_text}", line.pc),
        step("technical_component", f"per unit: {split} = {money(line.tc)}", line.tc),
        step("mppr_tc", _reduction("TC", line, group, tc_share, top=line.top_tc, lines=lines), tc_first),
    ]
    if pc_share == 100:
        steps.append(step("mppr_pc", f"PC paid in full: MULT PROC {kind} reduces only the TC", pc_first))
    else:
        steps.append(step("mppr_pc", _reduction("PC", line, group, pc_share, top=line.top_pc, lines=lines), pc_first))
    first, other = tc_first + pc_first, tc_reduced + pc_reduced
    text = f"first unit: TC {money(tc_first)} + PC {money(pc_first)} = {money(first)}"
    if line.units > 1:
        text += f"; {_units(line)}: {money(tc_reduced)} + {money(pc_reduced)} = {money(other)} each"
    steps.append(step("unit_amounts", text, first))
    return steps, first, other


def _reduction(part: str, line: Line, group: str, share: int, *, top: bool, lines: Sequence[Line]) -> str:
    """Why a part (TC or PC) of a line is paid in full or at `share` percent (§4a)."""
    value = line.tc if part == "TC" else line.pc
    cut = f"{money(value)} x {share}% = {money(value * share / HUNDRED)}"
    if value == 0:
        return f"no {part} to reduce ({group})"
    if top:
        further = f"; {_units(line)}: {cut} each" if line.units > 1 else ""
        return f"{group}; this line has the group's highest {part}: first unit in full{further}"
    leader = next((other for other in group_of(line, lines) if (other.top_tc if part == "TC" else other.top_pc)), None)
    highest = "" if leader is None else f"line {leader.number} has the group's highest {part}, "
    amount = "" if leader is None else f"{money(leader.tc if part == 'TC' else leader.pc)}; "
    return f"{group}; {highest}{amount}every unit here: {cut}"


def _cap_step(line: Line, first: Decimal, other: Decimal) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """§4b: each unit paid the lower of its amount and the OPPS amount."""
    if line.opps is None:
        return [], first, other
    capped_first, capped_other = min(first, line.opps), min(other, line.opps)
    opps = money(line.opps)
    if line.units == 1 or first == other:
        text = f"per unit: min({money(first)}, OPPS {opps}) = {money(capped_first)}"
    else:
        text = (
            f"first unit: min({money(first)}, OPPS {opps}) = {money(capped_first)}; "
            f"{_units(line)}: min({money(other)}, OPPS {opps}) = {money(capped_other)} each"
        )
    decided = capped_first < first or (line.units > 1 and capped_other < other)
    return (
        [step("opps_cap", text + ("" if decided else " (not lower: no cap)"), capped_first)],
        capped_first,
        capped_other,
    )


def _amount_step(line: Line, first: Decimal, other: Decimal) -> tuple[dict[str, Any], Decimal]:
    amount = first + (line.units - 1) * other
    if line.units == 1:
        text = f"1 unit: {money(amount)}"
    elif first == other:
        text = f"{money(first)} x {line.units} units = {money(amount)}"
    else:
        text = f"{money(first)} + {line.units - 1} x {money(other)} = {money(amount)}"
    return step("amount", text, amount), amount


def _factor_step(line: Line, lines: Sequence[Line]) -> tuple[dict[str, Any], Decimal]:
    """§4.4: the adjustment factor and each of its parts."""
    factor, parts, notes = factor_before_secondary(line)
    when = line.row["service_date"]
    if line.secondary:
        first = next(
            o for o in lines if o.row["multiple_procedure"] and o.row["service_date"] == when and not o.secondary
        )
        factor *= SECONDARY
        parts.append(
            f"{SECONDARY} (MULT PROC 2, secondary: line {first.number} ranks first on {when} "
            f"by fee x units x factors, {money(_rank(first))})"
        )
    elif line.row["multiple_procedure"]:
        notes.append(f"MULT PROC 2: this line ranks first on {when} ({money(_rank(line))}), not reduced")
    text = " x ".join(parts) + f" = {shown(factor, 1)}" if parts else "none applies: 1"
    return step("adjustment_factor", "; ".join([text, *notes]), factor, places=1), factor


def _not_applied_step(line: Line, lines: Sequence[Line]) -> list[dict[str, Any]]:
    """§4c: a MULT PROC 3 or 5 line sharing its date with another of its indicator is not reduced."""
    if not line.not_applied:
        return []
    others = ", ".join(str(other.number) for other in group_of(line, lines) if other is not line)
    text = (
        f"MULT PROC {line.kind} ({NOT_APPLIED[line.kind]}) with line(s) {others} on {line.row['service_date']}: "
        "Medicare would reduce it, the engine does not (docs/spec.md §4c)"
    )
    return [step("not_applied", text, None)]


def _allowed_steps(line: Line) -> list[dict[str, Any]]:
    """§4.5, 4.6: the amount times the factor, rounded half up once, at most the charge; 0 when the
    status is not payable."""
    if not line.payable:
        line.allowed = Decimal(0)
        return [step("allowed", f"STATUS CODE {line.status} is not payable (A, R, T are): 0.00", line.allowed)]
    exact = round_half_up(line.amount * line.factor)
    steps = [
        step("allowed", f"round_half_up({money(line.amount)} x {shown(line.factor, 1)}, 2) = {money(exact)}", exact)
    ]
    charge = cents(int(line.row["charge_cents"]))
    line.allowed = min(charge, exact)
    if charge < exact:
        steps.append(step("charge_cap", f"min(charge {money(charge)}, {money(exact)}) = {money(charge)}", charge))
    return steps


def line_steps(line: Line, lines: Sequence[Line]) -> list[dict[str, Any]]:
    """The line's steps, from its PFS amount to its allowed amount; sets the line's worked `amount`,
    `factor` and `allowed`."""
    steps = [step("pfs_amount", f"per unit: {line.fee_text}", line.fee)]
    if line.opps is not None:
        steps.append(step("opps_amount", f"per unit: {line.opps_text}", line.opps))
    factor_step, line.factor = _factor_step(line, lines)
    if not line.payable:  # §4.6: allowed 0, and no part in 4a; its factor is still computed
        return [*steps, factor_step, *_allowed_steps(line)]
    first = other = line.fee
    if line.kind in TC_PAID_PERCENT:
        components, first, other = _component_steps(line, lines)
        steps += components
    capped, first, other = _cap_step(line, first, other)
    amount_step, line.amount = _amount_step(line, first, other)
    return [*steps, *capped, *_not_applied_step(line, lines), amount_step, factor_step, *_allowed_steps(line)]


def mismatches(lines: Sequence[Line]) -> list[str]:
    """Every step where this module's Decimal result differs from the engine's integer one."""
    found = []
    for line in lines:
        row = line.row
        opps = None if row["opps_cents"] is None else cents(int(row["opps_cents"]))
        checks: list[tuple[str, Any, Any]] = [
            ("PFS amount", line.fee, cents(int(row["fee_schedule_cents"]))),
            ("OPPS amount", line.opps, opps),
            ("PC", line.pc, cents(int(row["professional_cents"]))),
            ("top TC line", line.top_tc, bool(row["top_tc"])),
            ("top PC line", line.top_pc, bool(row["top_pc"])),
            # A line that is not payable has no amount to explain (allowed 0): the engine's is not checked.
            ("amount", line.amount, Decimal(int(row["amount_e2"])).scaleb(-4) if line.payable else line.amount),
            ("adjustment factor", line.factor, Decimal(int(row["adjustment_factor_e5"])).scaleb(-5)),
            ("allowed", line.allowed, cents(int(row["allowed_cents"]))),
            ("MULT PROC 3/5 note", line.not_applied, bool(row["not_applied"])),
            ("payable", line.status in PAYABLE, line.payable),
        ]
        found += [
            f"line {line.number}: {what} worked out here is {mine}, the engine's is {engine}"
            for what, mine, engine in checks
            if mine != engine
        ]
    return found
