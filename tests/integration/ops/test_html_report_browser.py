"""`claims-etl report --html`: the file is rendered by headless Chromium (Debian's package, installed by
scripts/bootstrap.sh); its screenshot is not blank, and the rendered DOM's chart elements carry the
numbers `report --json` prints (ranges and their stages, rejections by rule, places of service),
which match the warehouse rows of the run. The file is self-contained and holds no patient id."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image

from claims_etl.ops.report_svg import STAGE_COLOURS
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests.db import SOURCE_URL, cli_env, read_source, run_cli

CLAIMS = 1_500
PATIENT_ID = "PHI-PATIENT-7731"
RANGE_STAGES = {"extract", "validate", "price", "load"}


def _chromium() -> str:
    """Debian's chromium, installed here when missing and installable; skipped only if neither."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"],
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}, capture_output=True, check=False, timeout=600,
        )  # fmt: skip
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and cannot be installed here (scripts/bootstrap.sh installs it)")
    return found


@pytest.fixture
def two_runs(pg_settings: Settings, tmp_path: Path) -> tuple[Settings, str, str]:
    """Two recorded runs over several ranges and chunks: a first of 400 claims, then the rest."""
    seed(pg_settings, CLAIMS, seed=57, invalid_rate=0.1, directory=tmp_path)
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET patient_id = %s", [PATIENT_ID])
        connection.execute("TRUNCATE staging.etl_run_log")  # the history charts: these two runs only
    env = cli_env(pg_settings, CLAIMS_ETL_RANGE_CLAIMS="400", CLAIMS_ETL_LOAD_CHUNK_CLAIMS="150")
    first = run_cli(env | {"CLAIMS_ETL_LIMIT": "400"})
    second = run_cli(env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    return pg_settings, json.loads(first.stdout)["run_id"], json.loads(second.stdout)["run_id"]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env=cli_env(settings, COLUMNS="200"), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


class _Charts(HTMLParser):
    """The rendered DOM's chart bars (`rect` with data-*) and the embedded report-data block."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.in_data = False
        self.data = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "rect" and values.get("class") == "bar":
            self.bars.append({name[5:]: value for name, value in values.items() if name.startswith("data-")})
        self.in_data = tag == "script" and values.get("id") == "report-data"

    def handle_endtag(self, tag: str) -> None:
        self.in_data = False

    def handle_data(self, data: str) -> None:
        if self.in_data:
            self.data += data


def _colours(path: Path) -> Counter[bytes]:
    """Pixels per RGB colour of a screenshot."""
    with Image.open(path) as image:
        found = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert found is not None
    return Counter({bytes(colour): count for count, colour in found})


def _timeline_of(report: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (
            bar["lane"],
            "" if bar["range"] is None else str(bar["range"]),
            bar["stage"],
            str(bar.get("chunk", "")),
            bar["start"],
        )
        for bar in report["charts"]["timeline"]["bars"]
    }


BROWSER = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def _browser(page: Path) -> list[str]:
    """The flags, with a profile beside the page: two tests' browsers at once (xdist) share no profile lock."""
    return [*BROWSER, f"--user-data-dir={page.parent / 'chromium-profile'}"]


def _assert_screenshot_not_blank(chromium: str, page: Path, screenshot: Path, width: int) -> None:
    """Chromium's screenshot of the page at a window `width`: mostly not white, every range stage's
    colour drawn, and the charts spread over the page rather than a strip of it."""
    shot = subprocess.run(
        [chromium, *_browser(page), f"--screenshot={screenshot}", f"--window-size={width},2400", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr
    colours = _colours(screenshot)
    white = colours[b"\xff\xff\xff"]
    assert sum(colours.values()) - white > sum(colours.values()) // 20, "the screenshot is (nearly) blank"
    stage_colours = {bytes.fromhex(STAGE_COLOURS[stage][1:]) for stage in ("extract", "validate", "load", "mark")}
    assert stage_colours <= set(colours), "a stage's colour is missing from the rendered charts"
    assert len(colours) >= 8
    with Image.open(screenshot) as image:  # the page's right fifth is not left empty (max-width, charts)
        right = image.convert("RGB").crop((width * 4 // 5, 0, width - 40, 1200))
        drawn = sum(count for count, colour in right.getcolors(maxcolors=1 << 24) or [] if colour != (255, 255, 255))
        assert drawn > right.width * right.height // 50, "the right fifth of the page is empty"


def _rendered(chromium: str, page: Path) -> _Charts:
    """The chart elements of the DOM Chromium rendered from the page."""
    dom = subprocess.run(
        [chromium, *_browser(page), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0 and "<svg" in dom.stdout, dom.stderr
    charts = _Charts()
    charts.feed(dom.stdout)
    return charts


def test_html_report_renders_in_chromium_and_its_charts_match_report_json(
    two_runs: tuple[Settings, str, str], tmp_path: Path
) -> None:
    chromium = _chromium()
    settings, first_id, second_id = two_runs
    out = tmp_path / "report.html"
    as_json = _cli(settings, "report", second_id, "--html", str(out), "--json", "--runs", "5")
    assert as_json.returncode == 0 and out.exists(), as_json.stderr
    report = json.loads(as_json.stdout)
    text = out.read_text(encoding="utf-8")

    # Self-contained, no PHI: no network reference at all, and no patient id anywhere.
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<link|<img|@import|url\(", text, re.I)
    assert PATIENT_ID not in text and PATIENT_ID not in as_json.stdout

    for width in (1280, 1920):
        _assert_screenshot_not_blank(chromium, out, tmp_path / f"report-{width}.png", width)
    charts = _rendered(chromium, out)
    assert json.loads(charts.data)["charts"] == report["charts"]  # the embedded data is the JSON's

    # The timeline: a bar per range stage and per chunk marking, where `report --json` puts them.
    timeline = [bar for bar in charts.bars if "lane" in bar]
    drawn = {(b["lane"], b["range"], b["stage"], b["chunk"], float(b["start"])) for b in timeline}
    assert drawn == _timeline_of(report) and len(timeline) == len(report["charts"]["timeline"]["bars"])
    ranges = report["ranges"]
    assert len(ranges) >= 3  # a quarter-size first range of 100, then ranges of 400
    for part in ranges:
        stages = {b["stage"] for b in timeline if b["range"] == str(part["range"])}
        assert stages == RANGE_STAGES | {"mark"}
        seconds = {b["stage"]: float(b["seconds"]) for b in timeline if b["range"] == str(part["range"])}
        assert all(seconds[stage] == part["seconds"][stage] for stage in RANGE_STAGES)
        order = sorted(RANGE_STAGES, key=lambda stage: part["started"][stage])
        assert order == ["extract", "validate", "price", "load"]
    assert {b["stage"] for b in timeline if b["lane"] == "run"} == {"start-up", "lease", "reference"}

    # Rejections by rule: the chart's counts are the run's.
    rules = {b["rule"]: int(b["claims"]) for b in charts.bars if "rule" in b}
    assert rules == report["metrics"]["rejections_by_rule"] and rules
    assert all(row["description"] for row in report["charts"]["rejections"])

    # Places of service: the chart's cents are the run's, which are its warehouse rows.
    places = {(b["pos"], b["measure"]): (int(b["cents"]), int(b["claims"])) for b in charts.bars if "measure" in b}
    warehouse = read_source(
        "SELECT place_of_service, count(*) AS claims, (sum(total_charge) * 100)::bigint AS charge, "
        f"(sum(total_allowed) * 100)::bigint AS allowed FROM warehouse.priced_claims WHERE run_id = '{second_id}' "
        "GROUP BY place_of_service"
    )
    expected = {}
    for pos, claims, charge, allowed in warehouse.iter_rows():
        expected[(pos, "charge")], expected[(pos, "allowed")] = (charge, claims), (allowed, claims)
    assert places == expected and sum(claims for _, claims in places.values()) == 2 * report["claims_priced"]

    # History: both runs, oldest first, with their throughput.
    throughput = {b["run"]: float(b["value"]) for b in charts.bars if b.get("part") in ("succeeded", "failed")}
    assert throughput == {run["run_id"]: run["claims_per_second"] for run in report["charts"]["history"]}
    assert [run["run_id"] for run in report["charts"]["history"]] == [first_id, second_id]

    latest = _cli(settings, "report", "--html", str(tmp_path / "latest.html"))  # the latest run: this one
    assert latest.returncode == 0 and f"wrote the report of run {second_id}" in latest.stdout, latest.stderr
    unwritable = _cli(settings, "report", "--html", str(tmp_path / "missing" / "report.html"))
    assert unwritable.returncode == 2 and unwritable.stderr.startswith("error: cannot write"), unwritable.stderr
