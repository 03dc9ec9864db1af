"""The HTML run report from hand-made run summaries: older summaries render what they hold, and no
value can leave its place in the page (the browser test is tests/integration/ops/test_html_report_browser.py)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from claims_etl.ops.html_report import chart_data, html
from claims_etl.ops.report_svg import PALETTE, STAGE_COLOURS, STATUS_COLOURS


def _run(**changes: Any) -> dict[str, Any]:
    """A run summary as the log kept it before stage starts and per-POS totals were recorded."""
    stage = {"stage": "extract", "seconds": 0.5, "rows_in": 10, "rows_out": 10, "rows_per_second": 20.0}
    return {
        "run_id": "20260101T000000-0000abcd",
        "status": "succeeded",
        "started_at": "2026-01-01T00:00:00+00:00",
        "seconds": 1.0,
        "claims_read": 10,
        "claims_per_second": 10.0,
        "stages": [stage],
        "ranges": [{"range": 1, "worker": "host:1", "attempt": 1, "claims": 10, "seconds": {"extract": 0.5}}],
        "metrics": {"rejections_by_rule": {"V01": 2, "V13": 5, "X_LATE": 2}},
        "alerts": [],
    } | changes


def test_a_run_recorded_before_the_new_fields_renders_what_it_has() -> None:
    run = _run()
    charts = chart_data(run, [run])
    page = html(run, charts)
    assert charts["timeline"]["bars"] == [] and charts["places_of_service"] is None
    assert "No stage timings recorded" in page and "Not recorded for this run" in page
    assert [(r["rule"], r["claims"]) for r in charts["rejections"]] == [("V13", 5), ("V01", 2), ("X_LATE", 2)]
    assert charts["rejections"][2]["description"].startswith("custom rule")
    assert charts["history"][0]["stage_seconds"] == {"extract": 0.5}


def test_the_timeline_places_each_stage_and_marking_from_the_run_start() -> None:
    part = {
        "range": 2,
        "worker": "host:1",
        "attempt": 2,
        "claims": 10,
        "seconds": {"extract": 0.5, "load": 0.25},
        "started": {"extract": 0.1, "load": 0.7},
        "marks": [[0.8, 0.05]],
    }
    lease = {"stage": "lease", "seconds": 0.05, "rows_in": 0, "rows_out": 10, "started_at": 1767225600.02}
    bars = chart_data(_run(ranges=[part], stages=[lease]), [])["timeline"]["bars"]
    assert [(b["lane"], b["stage"], b["start"], b["seconds"]) for b in bars] == [
        ("run", "start-up", 0.0, 0.02),  # before the first timed stage: drawn, so the gap explains itself
        ("run", "lease", 0.02, 0.05),
        ("range 2 (attempt 2)", "extract", 0.1, 0.5),
        ("range 2 (attempt 2)", "load", 0.7, 0.25),
        ("range 2 (attempt 2)", "mark", 0.8, 0.05),
    ]


def test_no_value_can_close_the_data_block_or_add_markup() -> None:
    hostile = '</script><marquee onclick="alert(1)">'
    alert = {"name": "rejection_rate_high", "value": 1.0, "threshold": 0.5, "message": hostile}
    run = _run(alerts=[alert])
    page = html(run, chart_data(run, [run]))
    assert page.count("</script>") == 1 and "<marquee" not in page
    assert "&lt;/script&gt;&lt;marquee onclick=&quot;alert(1)&quot;&gt;" in page  # shown as text in the alerts
    embedded = json.loads(page.split('id="report-data">')[1].split("</script>")[0])
    assert embedded["charts"]["alerts"][0]["message"] == hostile


def _meanings(page: str) -> dict[str, set[str]]:
    """Each colour the page fills a chart element or a legend key with, and what it stands for there:
    a bar's stage, run part, rule (rejected or warned) or money measure; a legend key's name."""
    found: dict[str, set[str]] = defaultdict(set)
    for tag in re.findall(r"<rect [^>]*>", page):
        fill = re.search(r'fill="(#[0-9a-f]{6})"', tag)
        data = dict(re.findall(r'data-(stage|part|measure|rule)="([^"]*)"', tag))
        if fill and data:
            kind, value = next(iter(data.items()))
            found[fill.group(1)].add(f"rule:{'warned' if 'W' in value else 'rejected'}" if kind == "rule" else value)
    for colour, name in re.findall(r'<span class="key"><i style="background:(#[0-9a-f]{6})"></i>([^<]+)</span>', page):
        found[colour].add(name)
    for name, colour in re.findall(r"\.status\.(\w+) \{ background: (#[0-9a-f]{6}); \}", page):
        found[colour].add(name)
    return found


def test_each_colour_of_the_report_means_one_thing() -> None:
    """One palette: a stage, a run's outcome, a rejected or warned claim and a money measure never share
    a colour, on the page as drawn (bars, legends, the status badge) and in the palette itself."""
    colours = [colour for group in PALETTE.values() for colour in group.values()]
    assert len(colours) == len(set(colours))
    timed = {"stage": "extract", "seconds": 0.5, "rows_in": 10, "rows_out": 10, "started_at": 1767225600.5}
    part = {"range": 1, "worker": "h:1", "attempt": 1, "claims": 10, "seconds": {"load": 0.3}, "started": {"load": 0.6}}
    place = {"place_of_service": "11", "claims": 3, "charge_cents": 900, "allowed_cents": 300}
    run = _run(stages=[timed], ranges=[part | {"marks": [[0.9, 0.05]]}], places_of_service=[place])
    run["metrics"] |= {"warnings_by_rule": {"W_LATE": 1}}
    failed = _run(run_id="20260101T010000-0000dcba", status="failed", started_at="2026-01-01T01:00:00+00:00")
    meanings = _meanings(html(run, chart_data(run, [run, failed])))
    assert {colour: names for colour, names in meanings.items() if len(names) > 1} == {}
    assert meanings[STATUS_COLOURS["failed"]] == {"failed"} and meanings[STAGE_COLOURS["load"]] == {"load"}
    assert {"start-up", "mark", "rule:rejected", "rule:warned", "charge", "allowed", "succeeded"} <= set().union(
        *meanings.values()
    )


def test_the_run_axis_names_each_run_by_date_time_and_id() -> None:
    runs = [_run(run_id=f"20260101T0{n}0000-0000abc{n}", started_at=f"2026-01-01T0{n}:00:00+00:00") for n in range(3)]
    page = html(runs[-1], chart_data(runs[-1], runs))
    labels = re.findall(r'<text class="tick"[^>]*data-run="([^"]+)">([^<]+)<tspan[^>]*>([^<]+)</tspan>', page)
    assert ("20260101T020000-0000abc2", "01-01 02:00", "…0000abc2") in labels
    assert len(labels) == 2 * len(runs)  # both history charts
