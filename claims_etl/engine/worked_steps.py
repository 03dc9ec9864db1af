"""The steps of one priced line's worked computation, as `claims-etl explain` shows them: each step's
name, formula and amount (docs/spec.md §4, 4a-4c), worked in exact `Decimal` from the line's inputs by
claims_etl/engine/worked.py, and where the engine's amounts differ from them (`mismatches`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from claims_etl.engine.worked import (
    HUNDRED,
    KIND_NAMES,
    NOT_APPLIED,
    PAYABLE,
    PC_PAID_PERCENT,
    SECONDARY,
    TC_PAID_PERCENT,
    Line,
    cents,
    factor_before_secondary,
    group_of,
    money,
    reduction_rank,
    round_half_up,
    shown,
    step,
)


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
            f"by fee x units x factors, {money(reduction_rank(first))})"
        )
    elif line.row["multiple_procedure"]:
        notes.append(f"MULT PROC 2: this line ranks first on {when} ({money(reduction_rank(line))}), not reduced")
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
