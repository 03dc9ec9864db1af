"""The run report's charts as inline SVG (claims_etl/ops/html_report.py assembles the page): the stage
timeline, the recent runs, the rules tables and allowed against charge by place of service. Each chart
element carries its numbers as `data-*` attributes, so a test reads what a person sees."""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import Any

from claims_etl.stages import STAGES

# The report's one palette (Tableau 10, which most colour-blind readers tell apart, and two greys): each
# colour means one thing wherever it appears (tests/unit/ops/test_html_report.py). Stages have seven of their
# own; green and red say how a run ended (red: failed, and alerts, which ask someone to look); orange is
# a rejected or warned claim; the greys are money, charge light and allowed dark.
STAGE_COLOURS = {
    "start-up": "#e8e2dc",  # before the first stage: the process, connections, the run lock, checks
    "lease": "#9c755f",
    "reference": "#bab0ac",
    "extract": "#4e79a7",
    "validate": "#edc948",
    "price": "#b07aa1",
    "load": "#76b7b2",
    "mark": "#ff9da7",
}
STATUS_COLOURS = {"succeeded": "#59a14f", "failed": "#e15759", "running": "#8cd17d"}
CLAIM_COLOURS = {"rejected": "#f28e2b", "warned": "#ffbe7d"}
MEASURE_COLOURS = {"charge": "#d4d4d4", "allowed": "#595959"}
PALETTE = {"stage": STAGE_COLOURS, "status": STATUS_COLOURS, "claims": CLAIM_COLOURS, "money": MEASURE_COLOURS}
WIDTH = 1100  # the charts' drawing width; they scale to the page's (viewBox)
LABELS = 120  # left margin for lane and axis labels
LABEL_SLOT = 72  # the narrowest run slot that gets its own axis label (date and time, then the run)


def _svg(name: str, height: float) -> str:
    """A chart's opening tag: drawn WIDTH wide, shown as wide as the page with its proportions kept."""
    return (
        f'<svg class="chart" id="{name}" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img">'
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


def timeline_svg(data: dict[str, Any]) -> str:
    bars = data["bars"]
    if not bars:
        return '<p class="empty">No stage timings recorded for this run.</p>'
    lanes = list(dict.fromkeys(bar["lane"] for bar in bars))
    lane_height, top = 26, 24
    ticks = _ticks(data["seconds"])
    plot = WIDTH - LABELS - 20
    scale = plot / ticks[-1] if ticks[-1] else 0.0
    height = top + lane_height * len(lanes) + 10
    parts = [_svg("timeline", height)]
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
        if bar["stage"] == "start-up":
            label = f"start-up: {bar['seconds']:.3f} s (the process, connections, the run lock, checks)"
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


def history_svgs(runs: list[dict[str, Any]], current: str) -> str:
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
    height, top, bottom = 240, 12, 50
    plot_height = height - top - bottom
    ticks = _ticks(max((sum(value for _, value in stack) for stack in stacks), default=0.0), most=5)
    scale = plot_height / ticks[-1] if ticks[-1] else 0.0
    slot = (WIDTH - LABELS - 20) / len(runs)
    width = min(slot * 0.7, 60.0)
    parts = [_svg(name, height)]
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
        if run["run_id"] == current or index % math.ceil(LABEL_SLOT / slot) == 0:
            parts.append(_run_label(run, x + width / 2, top + plot_height + 14))
    parts.append("</svg>")
    return "".join(parts)


def _run_label(run: dict[str, Any], x: float, y: float) -> str:
    """A run's axis label: its start's date and time, and under it the end of its run id."""
    started = str(run["started_at"])[5:16].replace("T", " ")
    return (
        f'<text class="tick" x="{x:.1f}" y="{y}" text-anchor="middle" data-run="{escape(run["run_id"])}">'
        f'{escape(started)}<tspan x="{x:.1f}" dy="12">…{escape(run["run_id"][-8:])}</tspan></text>'
    )


def rules_table(rules: list[dict[str, Any]], verb: str) -> str:
    if not rules:
        return f'<p class="empty">No claim {escape(verb)}.</p>'
    most = max(rule["claims"] for rule in rules)
    rows = []
    for rule in rules:
        width = 260 * rule["claims"] / most if most else 0
        rows.append(
            f'<tr><td class="rule">{escape(rule["rule"])}</td><td class="count">{rule["claims"]:,}</td>'
            f'<td><svg class="chart" width="270" height="14"><rect class="bar" x="0" y="1" width="{width:.2f}" '
            f'height="12" fill="{CLAIM_COLOURS[verb]}" data-rule="{escape(rule["rule"])}" '
            f'data-claims="{rule["claims"]}"/></svg></td>'
            f"<td>{escape(rule['description'])}</td></tr>"
        )
    header = f"<tr><th>rule</th><th>claims {escape(verb)}</th><th></th><th>description</th></tr>"
    return f'<table class="rules">{header}{"".join(rows)}</table>'


def places_svg(places: list[dict[str, Any]] | None) -> str:
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
    parts = [_svg("places", height)]
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
                f'height="{tall:.2f}" fill="{MEASURE_COLOURS[measure]}" '
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
    return "".join(parts) + _legend(MEASURE_COLOURS, MEASURE_COLOURS) + table
