"""`claims-etl report --html`: one self-contained HTML file per run (inline CSS and SVG drawn here, no
script, font or image from the network), built from the run log's summaries (`progress_log.recent`).

`chart_data` is the data behind every chart; `report --json` prints it under `charts`, and the HTML
embeds it in `<script type="application/json" id="report-data">`, so the two can be compared. Each
chart element carries its numbers as `data-*` attributes. Nothing here reads claims: the summaries
hold counts, seconds, rule ids and places of service only, never a patient id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from claims_etl.errors import ConfigurationError
from claims_etl.ops.progress_log import failure_reason
from claims_etl.stages import STAGES
from claims_etl.stages.rules import rule_table

# One colour per stage (Tableau 10: tells apart for most colour-blind readers), chunk marking last.
STAGE_COLOURS = {
    "lease": "#9c755f",
    "reference": "#bab0ac",
    "extract": "#4e79a7",
    "validate": "#f28e2b",
    "price": "#59a14f",
    "load": "#e15759",
    "mark": "#76b7b2",
}
STATUS_COLOURS = {"succeeded": "#4e79a7", "failed": "#e15759", "running": "#bab0ac"}
WIDTH = 1100  # px: every chart's width
LABELS = 120  # px: left margin for lane and axis labels


def _run_status(run: dict[str, Any]) -> str:
    return f"{run['status']} ({run['note']})" if run.get("note") else str(run["status"])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def timeline(run: dict[str, Any]) -> dict[str, Any]:
    """Bars on one time axis (seconds since the run's start): the run's own stages (lease,
    reference) in lane `run`, then each range's stages and each chunk's source marking in the range's
    lane. Runs recorded before stage starts were kept have only the stages that carry them."""
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


def write(path: Path, run: dict[str, Any], charts: dict[str, Any]) -> None:
    try:
        path.write_text(html(run, charts), encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot write {path}: {error.strerror}") from None


def html(run: dict[str, Any], charts: dict[str, Any]) -> str:
    """The report as one HTML document."""
    template = Template(resources.files("claims_etl.ops").joinpath("run_report.html").read_text(encoding="utf-8"))
    sections = [
        _section("Stage timeline", _timeline_svg(charts["timeline"]), _TIMELINE_NOTE),
        _section("Recent runs", _history_svgs(charts["history"], run["run_id"]), _HISTORY_NOTE),
        _section("Rejections by rule", _rules_table(charts["rejections"], "rejected"), ""),
        _section("Allowed against charge by place of service", _places_svg(charts["places_of_service"]), _POS_NOTE),
        _section("Alerts", _alerts(charts["alerts"]), ""),
    ]
    if charts["warnings"]:
        sections.insert(3, _section("Warnings by rule", _rules_table(charts["warnings"], "warned"), ""))
    # The data block is JSON inside a script element: "<" escaped so no value can close the element.
    data = json.dumps({"run": run, "charts": charts}, default=str).replace("<", "\\u003c")
    return template.substitute(
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
        ("recovered", f"{run.get('claims_recovered', 0):,}"),
        ("quarantined", f"{run.get('claims_quarantined', 0):,}"),
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
    reason = f'<p class="reason">{escape(failure_reason(run["error"]))}</p>' if run.get("error") else ""
    return (
        f'<h1>Run {escape(run["run_id"])} <span class="status {escape(kind)}" data-status="{escape(status)}">'
        f'{escape(status)}</span></h1>{reason}<div class="cards">{cards}</div>{stages}'
    )


def _ticks(end: float, most: int = 10) -> list[float]:
    """Round axis ticks from 0 to at least `end`: steps of 1, 2 or 5 times a power of ten."""
    if end <= 0:
        return [0.0]
    raw = end / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    return [round(step * i, 10) for i in range(math.ceil(end / step - 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _timeline_svg(data: dict[str, Any]) -> str:
    bars = data["bars"]
    if not bars:
        return '<p class="empty">No stage timings recorded for this run.</p>'
    lanes = list(dict.fromkeys(bar["lane"] for bar in bars))
    lane_height, top = 26, 24
    ticks = _ticks(data["seconds"])
    plot = WIDTH - LABELS - 20
    scale = plot / ticks[-1] if ticks[-1] else 0.0
    height = top + lane_height * len(lanes) + 10
    parts = [f'<svg class="chart" id="timeline" width="{WIDTH}" height="{height}" role="img">']
    for tick in ticks:
        x = LABELS + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 6}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{top - 8}" text-anchor="middle">{_number(tick)} s</text>')
    for index, lane in enumerate(lanes):
        y = top + index * lane_height
        parts.append(f'<text class="lane" x="{LABELS - 8}" y="{y + 15}" text-anchor="end">{escape(lane)}</text>')
    for bar in bars:
        y = top + lanes.index(bar["lane"]) * lane_height
        y, tall = (y + 19, 5) if bar["stage"] == "mark" else (y + 4, 14)
        chunk = f" chunk {bar['chunk']}" if "chunk" in bar else ""
        label = f"{bar['lane']} {bar['stage']}{chunk}: {bar['seconds']:.3f} s from {bar['start']:.3f} s"
        parts.append(
            f'<rect class="bar" x="{LABELS + bar["start"] * scale:.2f}" y="{y}" '
            f'width="{max(bar["seconds"] * scale, 1.0):.2f}" height="{tall}" fill="{STAGE_COLOURS[bar["stage"]]}" '
            f'data-lane="{escape(bar["lane"])}" data-range="{"" if bar["range"] is None else bar["range"]}" '
            f'data-attempt="{"" if bar["attempt"] is None else bar["attempt"]}" data-stage="{bar["stage"]}" '
            f'data-chunk="{bar.get("chunk", "")}" data-start="{bar["start"]}" data-seconds="{bar["seconds"]}">'
            f"<title>{escape(label)}</title></rect>"
        )
    parts.append("</svg>")
    used = [stage for stage in STAGE_COLOURS if any(bar["stage"] == stage for bar in bars)]
    return "".join(parts) + _legend(used)


def _legend(names: Iterable[str], colours: dict[str, str] = STAGE_COLOURS) -> str:
    keys = "".join(
        f'<span class="key"><i style="background:{colours[name]}"></i>{escape(name)}</span>' for name in names
    )
    return f'<div class="legend">{keys}</div>'


def _history_svgs(runs: list[dict[str, Any]], current: str) -> str:
    if not runs:
        return '<p class="empty">No runs recorded.</p>'
    throughput = _run_bars(
        runs,
        current,
        "throughput",
        "claims/s",
        [[(run["status"].split(" ")[0], run["claims_per_second"])] for run in runs],
        STATUS_COLOURS,
    )
    seconds = _run_bars(
        runs,
        current,
        "stage-seconds",
        "stage seconds",
        [[(stage, run["stage_seconds"].get(stage, 0.0)) for stage in STAGES] for run in runs],
        STAGE_COLOURS,
    )
    statuses = sorted({run["status"].split(" ")[0] for run in runs})
    return (
        f"<h3>Throughput (claims/s)</h3>{throughput}{_legend(statuses, STATUS_COLOURS)}"
        f"<h3>Stage seconds</h3>{seconds}{_legend(STAGES)}"
    )


def _run_bars(
    runs: list[dict[str, Any]],
    current: str,
    name: str,
    unit: str,
    stacks: list[list[tuple[str, float]]],
    colours: dict[str, str],
) -> str:
    """One bar per run (a stack of its parts), runs oldest first, with a value axis on the left."""
    height, top, bottom = 230, 12, 40
    plot_height = height - top - bottom
    ticks = _ticks(max((sum(value for _, value in stack) for stack in stacks), default=0.0), most=5)
    scale = plot_height / ticks[-1] if ticks[-1] else 0.0
    slot = (WIDTH - LABELS - 20) / len(runs)
    width = min(slot * 0.7, 60.0)
    parts = [f'<svg class="chart" id="{name}" width="{WIDTH}" height="{height}" role="img">']
    for tick in ticks:
        y = top + plot_height - tick * scale
        parts.append(f'<line class="grid" x1="{LABELS}" y1="{y:.1f}" x2="{WIDTH - 20}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LABELS - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    parts.append(
        f'<text class="tick" x="12" y="{top + plot_height / 2:.0f}" '
        f'transform="rotate(-90 12 {top + plot_height / 2:.0f})" text-anchor="middle">{escape(unit)}</text>'
    )
    for index, (run, stack) in enumerate(zip(runs, stacks, strict=True)):
        x = LABELS + slot * index + (slot - width) / 2
        base = float(top + plot_height)
        for part, value in stack:
            tall = value * scale
            base -= tall
            parts.append(
                f'<rect class="bar" x="{x:.2f}" y="{base:.2f}" width="{width:.2f}" height="{tall:.2f}" '
                f'fill="{colours.get(part, "#888")}" data-run="{escape(run["run_id"])}" '
                f'data-part="{escape(part)}" data-value="{value}">'
                f"<title>{escape(run['run_id'])} ({escape(run['status'])}) {escape(part)}: {value:,.3f}</title></rect>"
            )
        if run["run_id"] == current:
            parts.append(
                f'<rect class="outline" x="{x - 2:.2f}" y="{base - 2:.2f}" width="{width + 4:.2f}" '
                f'height="{top + plot_height - base + 2:.2f}" fill="none" stroke="#222" stroke-width="2"/>'
            )
        label = str(run["started_at"])[11:19]
        parts.append(
            f'<text class="tick" x="{x + width / 2:.1f}" y="{top + plot_height + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _rules_table(rules: list[dict[str, Any]], verb: str) -> str:
    if not rules:
        return f'<p class="empty">No claim {escape(verb)}.</p>'
    most = max(rule["claims"] for rule in rules)
    rows = []
    for rule in rules:
        width = 260 * rule["claims"] / most if most else 0
        rows.append(
            f'<tr><td class="rule">{escape(rule["rule"])}</td><td class="count">{rule["claims"]:,}</td>'
            f'<td><svg class="chart" width="270" height="14"><rect class="bar" x="0" y="1" width="{width:.2f}" '
            f'height="12" fill="#e15759" data-rule="{escape(rule["rule"])}" data-claims="{rule["claims"]}"/></svg></td>'
            f"<td>{escape(rule['description'])}</td></tr>"
        )
    header = f"<tr><th>rule</th><th>claims {escape(verb)}</th><th></th><th>description</th></tr>"
    return f'<table class="rules">{header}{"".join(rows)}</table>'


def _places_svg(places: list[dict[str, Any]] | None) -> str:
    if places is None:
        return '<p class="empty">Not recorded for this run (runs before per-place totals were kept).</p>'
    if not places:
        return '<p class="empty">No claim priced.</p>'
    height, top, bottom = 260, 24, 36
    plot_height = height - top - bottom
    ticks = _ticks(max(place["charge_cents"] for place in places) / 100, most=5)
    scale = plot_height / ticks[-1] if ticks[-1] else 0.0
    slot = (WIDTH - LABELS - 20) / len(places)
    width = min(slot * 0.35, 40.0)
    parts = [f'<svg class="chart" id="places" width="{WIDTH}" height="{height}" role="img">']
    for tick in ticks:
        y = top + plot_height - tick * scale
        parts.append(f'<line class="grid" x1="{LABELS}" y1="{y:.1f}" x2="{WIDTH - 20}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LABELS - 6}" y="{y + 4:.1f}" text-anchor="end">${_number(tick)}</text>')
    for index, place in enumerate(places):
        left = LABELS + slot * index + slot / 2 - width
        for offset, measure in ((0.0, "charge"), (width, "allowed")):
            cents = place[f"{measure}_cents"]
            tall = cents / 100 * scale
            parts.append(
                f'<rect class="bar" x="{left + offset:.2f}" y="{top + plot_height - tall:.2f}" width="{width:.2f}" '
                f'height="{tall:.2f}" fill="{_MEASURE_COLOURS[measure]}" '
                f'data-pos="{escape(place["place_of_service"])}" data-measure="{measure}" data-cents="{cents}" '
                f'data-claims="{place["claims"]}">'
                f"<title>POS {escape(place['place_of_service'])} {measure}: ${cents / 100:,.2f} "
                f"({place['claims']:,} claims)</title></rect>"
            )
        centre = left + width
        share_y = top + plot_height - place["charge_cents"] / 100 * scale - 6
        parts.append(
            f'<text class="share" x="{centre:.1f}" y="{share_y:.1f}" text-anchor="middle">'
            f"{place['allowed_share']:.0%}</text>"
        )
        parts.append(
            f'<text class="tick" x="{centre:.1f}" y="{top + plot_height + 16}" text-anchor="middle">'
            f"{escape(place['place_of_service'])}</text>"
        )
    parts.append("</svg>")
    rows = "".join(
        f"<tr><td>{escape(p['place_of_service'])}</td><td>{p['claims']:,}</td><td>${p['charge_cents'] / 100:,.2f}</td>"
        f"<td>${p['allowed_cents'] / 100:,.2f}</td><td>{p['allowed_share']:.1%}</td></tr>"
        for p in places
    )
    table = (
        '<table class="places"><tr><th>place of service</th><th>claims</th><th>charge</th><th>allowed</th>'
        f"<th>allowed share</th></tr>{rows}</table>"
    )
    return "".join(parts) + _legend(_MEASURE_COLOURS, _MEASURE_COLOURS) + table


_MEASURE_COLOURS = {"charge": "#a0cbe8", "allowed": "#4e79a7"}


def _alerts(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return '<p class="ok">No alert fired.</p>'
    items = "".join(
        f'<li class="alert" data-alert="{escape(alert["name"])}"><b>{escape(alert["name"])}</b>: '
        f"{escape(alert['message'])}</li>"
        for alert in alerts
    )
    return f'<ul class="alerts">{items}</ul>'
