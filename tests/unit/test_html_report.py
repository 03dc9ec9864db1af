"""The HTML run report from hand-made run summaries: older summaries render what they hold, and no
value can leave its place in the page (the browser test is tests/integration/test_html_report.py)."""

from __future__ import annotations

import json
from typing import Any

from claims_etl.ops.html_report import chart_data, html


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
