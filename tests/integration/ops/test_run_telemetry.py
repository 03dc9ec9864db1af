"""JSON logs, the Prometheus textfile and OpenTelemetry spans on real runs: every JSON line carries the
run id and no PHI or password, a failed run ends with one JSON line naming its run, stage, error
class and exit code, the textfile parses with HELP and TYPE on each metric and holds the run's own
numbers (those etl_run_metrics stores), a failed run keeps the last success's time, and each stage is
one span."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

import claims_etl
from claims_etl.ops.metrics import PER_RUN_SERIES
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from tests.db import SOURCE_URL, TEST_DB, cli_env, read_source
from tests.seeding import seeded_fixture

PASSWORD = "Js0n-L0g_s3cret"
PATIENT = "PHI-DOE-JANE-0417"  # a patient id no log line may carry
STAGES = ["lease", "reference", "extract", "validate", "price", "load"]


def _a_patient_every_third_claim(settings: Settings) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET patient_id = %s WHERE claim_id %% 3 = 0", [PATIENT])


seeded = seeded_fixture(80, seed=23, invalid_rate=0.25, then=_a_patient_every_third_claim)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", "run", "--json", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line, each of which must be one JSON object."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def _phi(claims: pl.DataFrame) -> set[str]:
    ids = set(claims.get_column("patient_id").drop_nulls())
    births = {day.isoformat() for day in claims.get_column("patient_dob").drop_nulls()}
    return ids | births


def test_json_log_lines_carry_the_run_id_and_no_phi_or_password(seeded: Settings, target_name: str) -> None:
    phi = _phi(read_source("SELECT patient_id, patient_dob FROM staging.claims"))
    assert PATIENT in phi and len(phi) > 50
    odbc = seeded.target_odbc.get_secret_value()
    if target_name == "postgresql":  # psqlODBC on a trust login ignores the password; MariaDB's user has none
        odbc += f";Pwd={PASSWORD}"
    env = cli_env(
        seeded,
        CLAIMS_ETL_SOURCE_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{TEST_DB}",
        CLAIMS_ETL_TARGET_ODBC=odbc,
    )
    result = _run(env, "--log-format", "json", "-v")
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    lines = _json_lines(result.stderr)
    assert lines and all(line.get("run_id") == run_id for line in lines), result.stderr
    finished = {line["stage"]: line for line in lines if line["event"] == "stage finished"}
    assert sorted(finished) == sorted(STAGES)
    assert finished["extract"]["rows_out"] == 80 and finished["load"]["rows_out"] == 80
    assert all(line["seconds"] >= 0 and line["outcome"] == "ok" for line in finished.values())
    started = [line["stage"] for line in lines if line["event"] == "stage started"]
    assert sorted(started) == sorted(STAGES)  # one range: one event per stage, none per chunk
    # Fixed event names, the details in fields; the run's last line is its closing event with its totals.
    assert {line["event"] for line in lines} <= {"stage started", "stage finished", "alert fired", "run finished"}
    closing = lines[-1]
    assert (closing["event"], closing["level"], closing["outcome"]) == ("run finished", "info", "succeeded")
    assert (closing["claims_read"], closing["claims_priced"] + closing["claims_rejected"]) == (80, 80)
    everything = result.stdout + result.stderr
    assert PASSWORD not in everything
    assert not [value for value in phi if value in result.stderr]


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_failed_run_ends_with_one_json_line_and_keeps_the_last_success_time(seeded: Settings, tmp_path: Path) -> None:
    textfile = tmp_path / "claims_etl.prom"
    env = cli_env(seeded, CLAIMS_ETL_METRICS_TEXTFILE=str(textfile), CLAIMS_ETL_LOG_FORMAT="json")
    done = _run(env)
    assert done.returncode == 0, done.stderr
    succeeded = _metrics(textfile)
    assert succeeded["claims_etl_run_success"][()] == 1.0
    success_time = succeeded["claims_etl_last_success_timestamp_seconds"][()]

    seed(seeded, 20, seed=24, directory=tmp_path / "more")
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("DELETE FROM staging.reference_releases")  # the new claims' preflight fails
    failed = _run(env)
    assert failed.returncode == 2, failed.stderr
    lines = _json_lines(failed.stderr)
    errors = [line for line in lines if line["level"] == "error"]
    assert errors == [lines[-1]], failed.stderr
    closing = lines[-2]  # the run's closing event, then the command's one error line
    assert (closing["event"], closing["level"], closing["outcome"]) == ("run finished", "info", "failed")
    assert closing["error_class"] == "ConfigurationError" and closing["claims_read"] == 0
    last = lines[-1]
    assert last["event"] == "failed" and last["stage"] == "lease" and last["exit_code"] == 2
    assert last["error_class"] == "ConfigurationError" and "no fee schedule release" in last["error"]
    logged = read_source("SELECT run_id, status FROM staging.etl_run_log").rows()
    assert (last["run_id"], "failed") in logged
    assert all(line["run_id"] == last["run_id"] for line in lines)
    after = _metrics(textfile)
    assert after["claims_etl_run_success"][()] == 0.0
    assert after["claims_etl_last_success_timestamp_seconds"][()] == success_time

    # Without the file to carry it, the time comes from the run log: the successful run's last update.
    textfile.unlink()
    assert _run(env).returncode == 2
    recorded = read_source(
        "SELECT extract(epoch FROM updated_at)::float8 AS at FROM staging.etl_run_log WHERE status = 'succeeded' "
        "ORDER BY updated_at DESC LIMIT 1"
    ).item()
    assert _metrics(textfile)["claims_etl_last_success_timestamp_seconds"][()] == recorded
    assert 0 <= success_time - recorded < 60  # the file's time is taken after the run log's last write


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_failed_run_in_console_format_keeps_the_error_line(seeded: Settings) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("DELETE FROM staging.reference_releases")
    failed = _run(cli_env(seeded), "--log-format", "console")
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), failed.stderr


def _metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The textfile parsed: name -> sorted labels -> value; each family has HELP text and its TYPE (gauge,
    the chunk latency a summary)."""
    text = path.read_text()
    parsed: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        kind = "summary" if family.name == "claims_etl_chunk_seconds" else "gauge"
        assert family.documentation and family.type == kind, family
        assert f"# HELP {family.name} " in text and f"# TYPE {family.name} {kind}" in text
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return parsed


def test_the_textfile_holds_the_runs_counts_as_stored(
    seeded: Settings, tmp_path: Path, read_target: Callable[[str], pl.DataFrame]
) -> None:
    textfile = tmp_path / "claims_etl.prom"
    result = claims_etl.run(seeded.model_copy(update={"metrics_textfile": str(textfile)}))
    assert result.status == "succeeded" and result.claims_rejected > 0
    metrics = _metrics(textfile)
    outcomes = metrics["claims_etl_run_claims"]
    assert outcomes == {
        (("outcome", "priced"),): result.claims_priced,
        (("outcome", "rejected"),): result.claims_rejected,
        (("outcome", "quarantined"),): 0,
        (("outcome", "recovered"),): 0,
    }
    assert metrics["claims_etl_claims_read"][()] == 80
    assert {labels[0][1]: n for labels, n in metrics["claims_etl_rejections"].items()} == (
        result.metrics.rejections_by_rule
    )
    assert {labels[0][1]: s for labels, s in metrics["claims_etl_stage_seconds"].items()} == {
        stage.stage: stage.seconds for stage in result.stages
    }
    stored = read_target(f"SELECT name, labels, value FROM warehouse.etl_run_metrics WHERE run_id = '{result.run_id}'")
    from_table = {
        (name, tuple(sorted(json.loads(labels).items()))): value for name, labels, value in stored.iter_rows()
    }
    from_file = {
        (name, labels): value
        for name, samples in metrics.items()
        if name != "claims_etl_last_success_timestamp_seconds"
        for labels, value in samples.items()
    }
    per_run = {key: value for key, value in from_table.items() if key[0] in PER_RUN_SERIES}
    assert {key[0] for key in per_run} == {"claims_etl_range_stage_seconds"}  # stored, not in the file
    assert from_file == {key: value for key, value in from_table.items() if key not in per_run}


@pytest.fixture(scope="module")
def spans() -> Iterator[Any]:
    """OpenTelemetry's SDK with an in-memory exporter as the global tracer provider (set once)."""
    trace = pytest.importorskip("opentelemetry.trace")
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    # Left running, emptied: the global provider cannot be replaced, and a shut-down one logs a warning
    # for every later span, which tests counting a run's warnings in this process would see.
    exporter.clear()


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_each_stage_is_one_span_with_its_rows(seeded: Settings, spans: Any) -> None:
    spans.clear()
    result = claims_etl.run(seeded)
    finished = spans.get_finished_spans()
    (run,) = [span for span in finished if span.name == "run"]
    assert run.attributes["claims_etl.run_id"] == result.run_id  # attributes in the package's namespace
    stages = [span for span in finished if span.name != "run"]
    assert sorted(span.name for span in stages) == sorted(STAGES)
    records = {record.stage: record for record in result.stages}
    for span in stages:
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        record = records[span.name]
        rows = (span.attributes["claims_etl.rows_in"], span.attributes["claims_etl.rows_out"])
        assert rows == (record.rows_in, record.rows_out)
        assert span.attributes["claims_etl.outcome"] == "ok"
