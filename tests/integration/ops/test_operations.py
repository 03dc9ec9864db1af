"""Operations: the RVU cache against the real Redis, alerts, report/export on recorded runs, and the
dashboard driven in a pseudo-terminal while a run works."""

from __future__ import annotations

import csv
import json
import logging
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from pydantic import SecretStr

import claims_etl
from claims_etl.ops.metrics import SCALAR_METRICS
from claims_etl.ops.progress_log import baseline
from claims_etl.reference import FRAME_SCHEMAS
from claims_etl.reference.cache import KEY_PREFIX, clear_in_process
from claims_etl.reference.store import load_year
from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, write_reference_files
from tests.db import FAULTY_CLI, REDIS_URL, RUN_DATE, SOURCE_URL
from tests.helpers import Reader, assert_exactly_once_and_exact
from tests.seeding import seeded_fixture

CLAIMS = 1_200


def _cold_cache(settings: Settings) -> None:
    clear_in_process()


seeded = seeded_fixture(CLAIMS, seed=51, invalid_rate=0.1, then=_cold_cache)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@contextmanager
def _reference_tables_locked() -> Iterator[None]:
    """staging.rvu and staging.gpci held under ACCESS EXCLUSIVE by another session: a run that read them
    would wait for the lock and fail at its lock timeout. (They stay in place: a run first checks that
    db init's tables exist.)"""
    with psycopg.connect(SOURCE_URL) as holder:
        holder.execute("LOCK TABLE staging.rvu, staging.gpci IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_cold_run_fills_redis_warm_run_does_not_read_reference_tables(
    seeded: Settings, redis_db: redis.Redis, read_target: Reader
) -> None:
    with_redis = seeded.model_copy(update={"redis_url": SecretStr(REDIS_URL), "limit": 600})
    cold = claims_etl.run(with_redis)
    assert cold.metrics.cache["source"] == "database"
    assert len(redis_db.keys(f"{KEY_PREFIX}:*")) == len(FRAME_SCHEMAS)  # one key per reference frame
    clear_in_process()  # a new process: only Redis can serve the frames now
    with _reference_tables_locked():  # reading staging.rvu/gpci would now fail the run
        warm = claims_etl.run(with_redis.model_copy(update={"source_lock_timeout_seconds": 2}))
    assert (warm.metrics.cache["source"], warm.metrics.cache["hit_rate"]) == ("redis", 1.0)
    assert warm.claims_read == CLAIMS - 600
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_reference_reload_invalidates_the_cache(seeded: Settings, redis_db: redis.Redis, tmp_path: Path) -> None:
    with_redis = seeded.model_copy(update={"redis_url": SecretStr(REDIS_URL), "limit": 100})
    assert claims_etl.run(with_redis).metrics.cache["source"] == "database"
    assert claims_etl.run(with_redis).metrics.cache["source"] == "process"
    rvu, gpci = write_reference_files(tmp_path / "again", 51, code_pool(51))[2026]
    load_year(seeded, rvu, gpci, 2026, work_gpci="floor")
    reloaded = claims_etl.run(with_redis)
    assert reloaded.metrics.cache["source"] == "database"
    assert len(redis_db.keys(f"{KEY_PREFIX}:*")) == 2 * len(FRAME_SCHEMAS)  # the old version's age out, unread


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_unreachable_redis_gives_one_warning_and_the_same_results(
    seeded: Settings, read_target: Reader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="claims_etl")
    result = claims_etl.run(seeded.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0")}))
    assert result.metrics.cache["source"] == "database"
    assert _redis_warning_then_its_alert(caplog)
    assert_exactly_once_and_exact(seeded, read_target)


def _redis_warning_then_its_alert(caplog: pytest.LogCaptureFixture) -> bool:
    """One warning that Redis is unavailable (not one per lookup), then the cache alert it raises: a
    shared cache that is down is what that alert is for (docs/operations.md, Alerts)."""
    unavailable, fired = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Redis unavailable" in unavailable.getMessage()
    assert (fired.getMessage(), getattr(fired, "alert", None)) == ("alert fired", "cache_hit_rate_low")
    return True


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed")
    port = 6391
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0", process
    process.kill()
    process.wait()


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_redis_stopped_mid_way_gives_one_warning_and_the_same_results(
    seeded: Settings,
    read_target: Reader,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, server = private_redis
    with_redis = seeded.model_copy(update={"redis_url": SecretStr(url), "limit": 500})
    assert claims_etl.run(with_redis).metrics.cache["source"] == "database"
    server.kill()  # Redis dies between runs of the night
    server.wait()
    clear_in_process()
    caplog.set_level(logging.WARNING, logger="claims_etl")
    after = claims_etl.run(with_redis.model_copy(update={"limit": None}))
    assert (after.metrics.cache["source"], after.metrics.cache["redis_errors"]) == ("database", 1)
    assert _redis_warning_then_its_alert(caplog)
    assert_exactly_once_and_exact(seeded, read_target)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_report_and_export_of_recorded_runs_with_alerts(seeded: Settings, tmp_path: Path) -> None:
    odbc = seeded.target_odbc.get_secret_value()
    quiet = _cli(
        "run",
        "--json",
        CLAIMS_ETL_TARGET_ODBC=odbc,
        CLAIMS_ETL_LIMIT="300",
        CLAIMS_ETL_RUN_DATE=RUN_DATE.isoformat(),
        CLAIMS_ETL_ALERT_MAX_CPU_PERCENT="100.1",
        CLAIMS_ETL_ALERT_MIN_CACHE_HIT_RATE="0",
        CLAIMS_ETL_ALERT_MAX_REJECTION_RATE="1",
    )
    alarming = _cli(
        "run",
        "--json",
        CLAIMS_ETL_TARGET_ODBC=odbc,
        CLAIMS_ETL_RUN_DATE=RUN_DATE.isoformat(),
        CLAIMS_ETL_ALERT_MAX_REJECTION_RATE="0.01",
        CLAIMS_ETL_LOG_FORMAT="json",
    )
    assert quiet.returncode == 0 and alarming.returncode == 0, quiet.stderr + alarming.stderr
    fired = [line for line in map(json.loads, alarming.stderr.splitlines()) if line["event"] == "alert fired"]
    assert [(line["level"], line["alert"], line["threshold"]) for line in fired] == [
        ("warning", "rejection_rate_high", 0.01)
    ]
    quiet_id, alarming_id = json.loads(quiet.stdout)["run_id"], json.loads(alarming.stdout)["run_id"]
    assert json.loads(quiet.stdout)["alerts"] == []
    # the baseline a run's alerts compare it with: the newest succeeded runs but the run itself
    assert [run.claims_read for run in baseline(seeded, alarming_id)[:1]] == [300]
    newest = baseline(seeded, "no-such-run")[:2]
    assert [(run.claims_read, run.rejection_rate > 0) for run in newest] == [(CLAIMS - 300, True), (300, True)]

    report = _cli("report", alarming_id)
    assert report.returncode == 0, report.stderr
    assert alarming_id in report.stdout and "ALERT rejection_rate_high" in report.stdout
    assert "rejections" in report.stdout and "V15" in report.stdout
    latest = json.loads(_cli("report", "--json").stdout)
    assert latest["run_id"] == alarming_id and latest["claims_read"] == CLAIMS - 300
    assert "alerts: none" in _cli("report", quiet_id).stdout
    missing = _cli("report", "no-such-run")
    assert missing.returncode == 2 and "no run 'no-such-run' recorded" in missing.stderr

    exported = _cli("export", str(tmp_path / "runs.csv"))
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "runs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_run = {row["run_id"] for row in rows}
    assert {quiet_id, alarming_id} <= by_run
    alerts = [r for r in rows if r["kind"] == "alert"]
    assert {(r["run_id"], r["name"]) for r in alerts} >= {(alarming_id, "rejection_rate_high")}
    assert not [r for r in alerts if r["run_id"] == quiet_id]
    stage_seconds = [r for r in rows if r["run_id"] == alarming_id and r["kind"] == "stage" and r["name"] == "seconds"]
    assert [r["labels"] for r in stage_seconds] == ["lease", "reference", "extract", "validate", "price", "load"]
    scalars = {r["name"]: float(r["value"]) for r in rows if r["run_id"] == alarming_id and r["kind"] == "metric"}
    assert set(SCALAR_METRICS) <= set(scalars)  # the same names as the Prometheus samples
    assert scalars["claims_per_second"] > 0 and scalars["rss_max_bytes"] > 0
    assert 0 < scalars["cpu_usage_max_ratio"] <= 1 and 0 < scalars["rejected_ratio"] < 1
    chunks = [r for r in rows if r["run_id"] == alarming_id and r["name"] == "chunk_seconds"]
    quantiles = {r["labels"]: float(r["value"]) for r in chunks}
    assert list(quantiles) == ["0.5", "0.95", "0.99"] and 0 < quantiles["0.5"] <= quantiles["0.99"]


def _read_pty(fd: int, seconds: float, until: re.Pattern[str] | None = None) -> str:
    """What the terminal shows within `seconds`, or, with `until`, up to when that pattern first shows."""
    chunks, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until.search("".join(chunks))):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunks.append(os.read(fd, 65536).decode(errors="replace"))
            except OSError:
                break
    return "".join(chunks)


_LOADING = re.compile(r"load (300|600)/1,200 .*lease, reference, extract, validate, price, load")


def test_dashboard_in_a_terminal_follows_a_run_in_progress(seeded: Settings) -> None:
    env = os.environ | {
        "CLAIMS_ETL_SOURCE_URL": SOURCE_URL,
        "CLAIMS_ETL_TARGET_ODBC": seeded.target_odbc.get_secret_value(),
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOAD_CHUNK_CLAIMS": "300",
        "CLAIMS_ETL_FAULT": "pause_before_write:3",
        "CLAIMS_ETL_FAULT_PAUSE": "3",
        "COLUMNS": "160",
    }
    run = subprocess.Popen([*FAULTY_CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the dashboard, in a real terminal
        os.execve(
            sys.executable,
            [sys.executable, "-m", "claims_etl", "dashboard", "--interval", "0.2"],
            env | {"TERM": "xterm", "COLUMNS": "160", "LINES": "50"},
        )
    try:
        # Up to the pause at chunk 3 (chunks 1-2 loaded, the run in progress), however slow the start.
        during = _read_pty(fd, 60, until=_LOADING)
        run.communicate(timeout=120)
        assert run.returncode == 0
        after = _read_pty(fd, 1.5)
    finally:
        os.kill(pid, 2)
        os.waitpid(pid, 0)
        os.close(fd)
    assert "runs in progress: 1" in during, during[-3000:]
    assert _LOADING.search(during), during[-3000:]
    assert "runs in progress: 0" in after and "succeeded" in after
