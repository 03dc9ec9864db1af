"""`claims-etl explain` as text: one block per line, a label and its value on each row, values wrapping
under themselves so the worked formulas stay readable in 80 columns. Renders the explanation document
(`engine.explain.explanation`) and nothing else, so the text and `--json` cannot disagree."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

STEP_LABELS = {
    "pfs_amount": "PFS amount",
    "opps_amount": "OPPS amount",
    "professional_component": "PC",
    "technical_component": "TC",
    "mppr_tc": "MPPR on TC",
    "mppr_pc": "MPPR on PC",
    "unit_amounts": "per unit",
    "opps_cap": "OPPS cap",
    "not_applied": "not applied",
    "amount": "amount",
    "adjustment_factor": "factor",
    "allowed": "allowed",
    "charge_cap": "charge cap",
}


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=12)
    grid.add_column(overflow="fold")
    return grid


def _head(found: dict[str, Any]) -> Text:
    outcome = found["outcome"]
    status = found["status"] or "unknown"
    text = Text(f"claim {found['claim_id']} (source status {status}): {outcome}", style="bold")
    if outcome == "accepted":
        lines = f"{found['line_count']} line{'' if found['line_count'] == 1 else 's'}"
        text.append(f", {lines}, allowed {found['total_allowed']}")
    else:
        text.append(f" by {', '.join(found['rule_ids'])}")
    text.append(
        f"\nMAC {found['mac']}, locality {found['locality']}, POS {found['place_of_service']}, "
        f"charge {found['total_charge']}; validated and priced as a run would on {found['run_date']}",
        style="not bold",
    )
    if found.get("rules_file"):
        text.append(f" (rules file {found['rules_file']}, sha256 {found['rules_sha256'][:12]})", style="not bold")
    return text


def _line_title(line: dict[str, Any]) -> Text:
    modifiers = f" (modifiers {' '.join(line['modifiers'])})" if line["modifiers"] else ""
    units = f"{line['units']} unit{'' if line['units'] == 1 else 's'}"
    return Text(
        f"line {line['line_number']}: {line['procedure_code']}{modifiers}, {units}, "
        f"charge {line['charge']}, served {line['service_date']}",
        style="bold",
    )


def _file(kind: str, name: str, sha256: str, extra: str = "") -> str:
    """A release's file and its hash; rows carried over from an earlier release (their "file" is
    "from 2026A") have no hash of their own."""
    if not sha256:
        return f"; {kind} rows {name}{f' ({extra})' if extra else ''}"
    return f"; {kind} file {name} (sha256 {sha256[:12]}{f', {extra}' if extra else ''})"


def _release(release: dict[str, Any], first_line: int | None) -> str:
    """The release and its files; once per claim (a later line of the release names the first)."""
    text = f"{release['label']}, in force from {release['effective_from'] or 'its year'}"
    if first_line is not None:
        return f"{text}; files as for line {first_line}" if release.get("rvu_file") else text
    if release.get("rvu_file"):
        text += _file("RVU", release["rvu_file"], str(release["rvu_sha256"] or ""))
    if release.get("gpci_file"):
        work = f"work GPCI {release['work_gpci']}" if release.get("work_gpci") else ""
        text += _file("GPCI", release["gpci_file"], str(release["gpci_sha256"] or ""), work)
    return text


def _rvu_row(rvu: dict[str, Any]) -> str:
    text = (
        f"{rvu['hcpcs']} MOD {rvu['modifier'] or 'blank'}: status {rvu['status_code']}, "
        f"MULT PROC {rvu['mult_proc']}, PCTC IND {rvu['pctc_ind']}; WORK {rvu['work_rvu']}, "
        f"PE {rvu['pe_rvu']} ({rvu['pe_rvu_used']}), MP {rvu['mp_rvu']}"
    )
    if "opps_pe_rvu" in rvu:
        text += f"; OPPS PE {rvu['opps_pe_rvu']}, OPPS MP {rvu['opps_mp_rvu']}"
    return text


def _inputs(inputs: dict[str, Any], first_line: int | None) -> list[tuple[str, str]]:
    pos, gpci, factor = inputs["place_of_service"], inputs["gpci_row"], inputs["conversion_factor"]
    facility = "facility" if pos["facility"] else "non-facility"
    rules = " (the rules file's facility set)" if pos["facility_set"] == "rules file" else ""
    return [
        ("release", _release(inputs["release"], first_line)),
        ("RVU row", _rvu_row(inputs["rvu_row"])),
        ("setting", f"POS {pos['code']} (the {pos['from']}'s): {facility}{rules}"),
        (
            "GPCI row",
            f"MAC {gpci['mac']} locality {gpci['locality']}: PW {gpci['pw_gpci']}, "
            f"PE {gpci['pe_gpci']}, MP {gpci['mp_gpci']}",
        ),
        ("CF", f"{factor['value']}, {factor['kind']}: {factor['why']}"),
    ]


def _priced_line(line: dict[str, Any], first_line: int | None) -> RenderableType:
    grid = _grid()
    for label, value in _inputs(line["inputs"], first_line):
        grid.add_row(label, Text(value))
    for step in line["steps"]:
        grid.add_row(Text(STEP_LABELS.get(step["step"], step["step"]), style="cyan"), Text(step["formula"]))
    if line["pricing_note"]:
        grid.add_row("note", Text(line["pricing_note"]))
    return Group(_line_title(line), Padding(grid, (0, 0, 0, 2)))


def _rejected_line(line: dict[str, Any]) -> Text:
    text = _line_title(line)
    broken = ", ".join(line["rule_ids"]) or "no line rule broken"
    text.append(f": {broken}", style="not bold")
    return text


def explanation(found: dict[str, Any]) -> RenderableType:
    """The whole explanation as one renderable: head, rules or lines, total, and the consistency check."""
    parts: list[RenderableType] = [_head(found)]
    if found["outcome"] == "rejected":
        rules = _grid()
        for rule_id, description in found["rules"].items():
            rules.add_row(rule_id, Text(description))
        parts += [Padding(rules, (0, 0, 0, 2)), Text(""), *(_rejected_line(line) for line in found["lines"])]
        return Group(*parts)
    first_of_release: dict[str, int] = {}
    for line in found["lines"]:
        label = line["inputs"]["release"]["label"]
        parts += [Text(""), _priced_line(line, first_of_release.get(label))]
        first_of_release.setdefault(label, line["line_number"])
    warnings = f" (warnings: {', '.join(found['warnings'])})" if found["warnings"] else ""
    parts += [Text(""), Text(f"total allowed {found['total_allowed']}{warnings}", style="bold")]
    if found["consistent"]:
        parts.append(Text("every step worked out above equals the engine's amount"))
    else:
        parts += [
            Text("CONSISTENCY CHECK FAILED: the worked computation differs from the engine (a bug):", style="bold red"),
            *(Text(f"  {problem}", style="red") for problem in found["inconsistencies"]),
        ]
    return Group(*parts)
