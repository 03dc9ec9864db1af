"""`claims-etl report --html`: one self-contained HTML file per run (inline CSS and SVG drawn here, no
script, font or image from the network), built from the run log's summaries (`progress_log.recent`).

`chart_data` is the data behind every chart; `report --json` prints it under `charts`, and the HTML
embeds it in `<script type="application/json" id="report-data">`, so the two can be compared. Each
chart element carries its numbers as `data-*` attributes. Nothing here reads claims: the summaries
hold counts, seconds, rule ids and places of service only, never a patient id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from claims_etl.errors import ConfigurationError
from claims_etl.ops.progress_log import failure_reason
from claims_etl.ops.report_svg import (
    STATUS_COLOURS,
    history_svgs,
    places_svg,
    rules_table,
    timeline_svg,
)
from claims_etl.stages.rules import rule_table


def _run_status(run: dict[str, Any]) -> str:
    return f"{run['status']} ({run['note']})" if run.get("note") else str(run["status"])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def timeline(run: dict[str, Any]) -> dict[str, Any]:
    """Bars on one time axis (seconds since the run's start): the run's start-up (until its first timed
    stage) and own stages (lease, reference) in lane `run`, then each range's stages and each chunk's
    source marking in the range's lane. Runs recorded before stage starts were kept have only the
    stages that carry them."""
    bars: list[dict[str, Any]] = []
    origin = _epoch(run["started_at"])
    for stage in run.get("stages", []):
        if stage["stage"] in ("lease", "reference") and stage.get("started_at"):
            start = round(stage["started_at"] - origin, 4)
            bars.append(_bar("run", None, None, stage["stage"], start, stage["seconds"]))
    for part in run.get("ranges", []):
        lane = f"range {part['range']}" + (f" (attempt {part['attempt']})" if part.get("attempt", 1) > 1 else "")
        for stage, start in part.get("started", {}).items():
            bars.append(_bar(lane, part["range"], part.get("attempt", 1), stage, start, part["seconds"][stage]))
        for chunk, (start, seconds) in enumerate(part.get("marks", []), start=1):
            bars.append(_bar(lane, part["range"], part.get("attempt", 1), "mark", start, seconds) | {"chunk": chunk})
    first = min((bar["start"] for bar in bars), default=0.0)
    if first > 0:  # what the run did before its first timed stage, drawn so the gap explains itself
        bars.insert(0, _bar("run", None, None, "start-up", 0.0, round(first, 4)))
    end = max([float(run.get("seconds", 0.0)), *(bar["start"] + bar["seconds"] for bar in bars)])
    return {"seconds": round(end, 4), "bars": bars}


def _bar(
    lane: str, number: int | None, attempt: int | None, stage: str, start: float, seconds: float
) -> dict[str, Any]:
    return {"lane": lane, "range": number, "attempt": attempt, "stage": stage, "start": start, "seconds": seconds}


def history(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs oldest first: claims/s and each stage's seconds (summed over ranges)."""
    return [
        {
            "run_id": run["run_id"],
            "started_at": run["started_at"],
            "status": _run_status(run),
            "claims_read": run.get("claims_read", 0),
            "claims_per_second": run.get("claims_per_second", 0.0),
            "seconds": run.get("seconds", 0.0),
            "stage_seconds": {stage["stage"]: stage["seconds"] for stage in run.get("stages", [])},
        }
        for run in sorted(runs, key=lambda run: str(run["started_at"]))
    ]


def _by_rule(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Claims per rule, most first, with the contract's description (a custom rule's is in the run's
    rules file, which the run log does not keep)."""
    described = {row["id"]: row["description"] for row in rule_table()}
    return [
        {"rule": rule, "claims": claims, "description": described.get(rule, "custom rule (see the run's rules file)")}
        for rule, claims in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def chart_data(run: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the HTML charts draw, for `run` and the recent `runs` (the history charts)."""
    metrics = run.get("metrics", {})
    places = run.get("places_of_service")
    return {
        "timeline": timeline(run),
        "history": history(runs),
        "rejections": _by_rule(metrics.get("rejections_by_rule", {})),
        "warnings": _by_rule(metrics.get("warnings_by_rule", {})),
        # None: a run recorded before the per-POS totals were kept, not a run without priced claims.
        "places_of_service": None if places is None else [p | {"allowed_share": _share(p)} for p in places],
        "alerts": run.get("alerts", []),
    }


def _share(place: dict[str, Any]) -> float:
    return round(place["allowed_cents"] / place["charge_cents"], 4) if place["charge_cents"] else 0.0


def _palette_css() -> str:
    """The run statuses' colours, and the alerts' (a failed run's red), from the charts' one palette."""
    statuses = " ".join(f".status.{name} {{ background: {colour}; }}" for name, colour in STATUS_COLOURS.items())
    succeeded, failed = STATUS_COLOURS["succeeded"], STATUS_COLOURS["failed"]
    return f"{statuses} .ok {{ color: {succeeded}; }} .alert-edge {{ border-color: {failed}; }}"


def write(path: Path, run: dict[str, Any], charts: dict[str, Any]) -> None:
    try:
        path.write_text(html(run, charts), encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot write {path}: {error.strerror}") from None


def html(run: dict[str, Any], charts: dict[str, Any]) -> str:
    """The report as one HTML document."""
    template = Template(resources.files("claims_etl.ops").joinpath("run_report.html").read_text(encoding="utf-8"))
    sections = [
        _section("Stage timeline", timeline_svg(charts["timeline"]), _TIMELINE_NOTE),
        _section("Recent runs", history_svgs(charts["history"], run["run_id"]), _HISTORY_NOTE),
        _section("Rejections by rule", rules_table(charts["rejections"], "rejected"), ""),
        _section("Allowed against charge by place of service", places_svg(charts["places_of_service"]), _POS_NOTE),
        _section("Alerts", _alerts(charts["alerts"]), ""),
    ]
    if charts["warnings"]:
        sections.insert(3, _section("Warnings by rule", rules_table(charts["warnings"], "warned"), ""))
    # The data block is JSON inside a script element: "<" escaped so no value can close the element.
    data = json.dumps({"run": run, "charts": charts}, default=str).replace("<", "\\u003c")
    return template.substitute(
        palette=_palette_css(),
        title=escape(f"claims-etl run {run['run_id']}"),
        header=_header(run),
        sections="\n".join(sections),
        data=data,
    )


_TIMELINE_NOTE = (
    "Seconds since the run started. Each range is extracted, validated and priced, then loaded; the local "
    "engine prepares the next range while one loads. The thin bars under a range are its chunks' source "
    "markings, each after that chunk's warehouse commit."
)
_HISTORY_NOTE = "Oldest on the left; the run of this report is outlined. Stage seconds are summed over ranges."
_POS_NOTE = "Priced claims as loaded, by the claim's place of service; the allowed share is above each pair."


def _section(title: str, body: str, note: str) -> str:
    caption = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{caption}{body}</section>"


def _header(run: dict[str, Any]) -> str:
    status = _run_status(run)
    numbers = [
        ("started", str(run["started_at"])[:19].replace("T", " ")),
        ("seconds", f"{run.get('seconds', 0):,.2f}"),
        ("claims read", f"{run.get('claims_read', 0):,}"),
        ("priced", f"{run.get('claims_priced', 0):,}"),
        ("rejected", f"{run.get('claims_rejected', 0):,}"),
        ("claims/s", f"{run.get('claims_per_second', 0):,.0f}"),
    ]
    cards = "".join(f'<div class="card"><span>{escape(k)}</span><b>{escape(v)}</b></div>' for k, v in numbers)
    rows = "".join(
        f"<tr><td>{escape(s['stage'])}</td><td>{s['seconds']:.3f}</td><td>{s['rows_in']:,}</td>"
        f"<td>{s['rows_out']:,}</td><td>{s.get('rows_per_second', 0):,.0f}</td></tr>"
        for s in run.get("stages", [])
    )
    stages = (
        '<table class="stages"><tr><th>stage</th><th>seconds</th><th>rows in</th><th>rows out</th>'
        f"<th>rows/s</th></tr>{rows}</table>"
    )
    kind = str(run["status"])
    reason = f'<p class="reason alert-edge">{escape(failure_reason(run["error"]))}</p>' if run.get("error") else ""
    return (
        f'<h1>Run {escape(run["run_id"])} <span class="status {escape(kind)}" data-status="{escape(status)}">'
        f'{escape(status)}</span></h1>{reason}<div class="cards">{cards}</div>{_exceptional(run)}{stages}'
    )


def _exceptional(run: dict[str, Any]) -> str:
    """Claims a run took over from a killed run, or set aside, in a line under the cards when there are
    any: recovered claims are also counted as priced or rejected, so they are not a card of their own."""
    counts = [
        f"{run[key]:,} {label}"
        for key, label in (
            ("claims_recovered", "recovered from a killed run (counted above as priced or rejected)"),
            ("claims_quarantined", "quarantined (the warehouse refused them; see claims-etl report)"),
        )
        if run.get(key)
    ]
    return f'<p class="note exceptional">Of these claims: {escape("; ".join(counts))}.</p>' if counts else ""


def _alerts(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return '<p class="ok">No alert fired.</p>'
    items = "".join(
        f'<li class="alert alert-edge" data-alert="{escape(alert["name"])}"><b>{escape(alert["name"])}</b>: '
        f"{escape(alert['message'])}</li>"
        for alert in alerts
    )
    return f'<ul class="alerts">{items}</ul>'
