"""The command line on the real databases: exit codes and one clear line for bad input, never a password
(docs/spec.md §6), `export -` and `reference list` as a user sees them; the cases that need no database
are in tests/unit/cli/test_app.py."""

from __future__ import annotations

import csv
import io
import json
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, write_reference_files
from tests.db import FAULTY_CLI, SOURCE_URL, TARGETS, cli_env
from tests.unit.cli.test_app import PASSWORD, assert_one_clear_line, cli


def test_malformed_cms_file_exits_1_and_loads_nothing(pg_settings: Settings, tmp_path: Path) -> None:
    rvu, gpci = write_reference_files(tmp_path, seed=3, pool=code_pool(3, codes=20))[2026]
    rvu.write_text(rvu.read_text().replace("HCPCS,MOD", "HCPCS,MODIFIER", 1))
    result = cli(
        "reference",
        "load",
        "--rvu",
        str(rvu),
        "--gpci",
        str(gpci),
        "--year",
        "2026",
        env={"CLAIMS_ETL_SOURCE_URL": SOURCE_URL},
    )
    assert_one_clear_line(result, 1, "line 10, header: no column named 'MOD'")


@pytest.mark.parametrize(
    ("odbc", "fragment"),
    [
        (
            f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=1;Database=x;Uid=postgres;Pwd={PASSWORD}",
            "cannot reach the warehouse",
        ),
        (
            f"Driver={{No Such Driver}};Server=127.0.0.1;PWD={PASSWORD}",
            "cannot tell the warehouse's SQL dialect",
        ),
        (
            f"Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;User=nobody;Password={PASSWORD};Database=x",
            "the warehouse refused the login",  # a configuration error: retrying cannot help
        ),
    ],
)
def test_bad_or_unreachable_target_fails_cleanly(pg_settings: Settings, odbc: str, fragment: str) -> None:
    result = cli("run", env={"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": odbc})
    code = 1 if "cannot reach" in fragment else 2
    assert_one_clear_line(result, code, fragment)


def test_seed_of_no_claims_loads_the_reference_releases_and_a_run_has_nothing_to_do(pg_settings: Settings) -> None:
    env = {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": TARGETS["postgresql"]}
    seeded = cli("seed", "--claims", "0", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 0 claims (0 lines, 0 invalid)" in seeded.stdout
    releases = json.loads(cli("reference", "list", "--json", env=env).stdout)
    assert {release["year"] for release in releases} == {2025, 2026}
    result = cli("run", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["claims_read"] == 0


RECORD_SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "run-record.schema.json").read_text())


def assert_valid_run_record(document: dict[str, Any]) -> None:
    """The record against docs/run-record.schema.json, its timestamps ISO 8601 with an offset."""
    validator = jsonschema.Draft202012Validator(RECORD_SCHEMA)
    assert [error.message for error in validator.iter_errors(document)] == []
    stamps = [document["started_at"], document["finished_at"], *(s["started_at"] for s in document["stages"])]
    assert all(datetime.fromisoformat(stamp).utcoffset() is not None for stamp in stamps)


def test_run_json_reports_the_run(pg_settings: Settings, tmp_path: Path) -> None:
    """`run --json` prints the run record and `--results` writes the same; the URL given as a flag is
    masked in the invocation's arguments."""
    env = {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": TARGETS["postgresql"]}
    seeded = cli("seed", "--claims", "200", "--seed", "5", env=env)
    assert seeded.returncode == 0, seeded.stderr
    results = tmp_path / "run.json"
    flags = ("--partitions", "2", "--results", str(results), "--source-url", SOURCE_URL)
    result = cli("run", "--json", *flags, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert json.loads(results.read_text()) == summary
    assert_valid_run_record(summary)
    assert (summary["schema_version"], summary["outcome"]) == (1, "succeeded")
    assert summary["invocation"]["args"] == ["run", "--json", *flags[:-1], "***"]
    assert summary["claims_read"] == 200
    assert summary["claims_priced"] + summary["claims_rejected"] == 200
    assert [stage["stage"] for stage in summary["stages"]] == [
        "lease",
        "reference",
        "extract",
        "validate",
        "price",
        "load",
    ]
    assert summary["seconds"] > 0 and summary["claims_per_second"] > 0
    assert "SYN" not in result.stdout + result.stderr  # synthetic patient ids never printed


def test_a_failed_run_still_writes_its_record(pg_settings: Settings, tmp_path: Path) -> None:
    env = {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": TARGETS["postgresql"]}
    assert cli("seed", "--claims", "20", "--seed", "6", env=env).returncode == 0
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("DELETE FROM staging.reference_releases")  # the preflight refuses the run
    results = tmp_path / "run.json"
    failed = cli("run", "--json", "--results", str(results), env=env)
    assert failed.returncode == 2 and failed.stdout == "", failed.stdout + failed.stderr
    record = json.loads(results.read_text())
    assert_valid_run_record(record)
    assert (record["outcome"], record["status"], record["error"]["class"]) == ("failed", "failed", "ConfigurationError")
    assert record["error"]["stage"] == "lease" and "no fee schedule release" in record["error"]["message"]
    unwritable = cli("run", "--results", str(tmp_path / "no-such-directory" / "run.json"), env=env)
    assert_one_clear_line(unwritable, 2, "--results")


def _said(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_run_record_the_disk_refuses_after_the_run_is_one_line_and_exit_4(
    pg_settings: Settings, tmp_path: Path
) -> None:
    """The disk refuses the record once the run succeeded (a file size limit: a write past it fails
    with EFBIG, for root too, part of the record written): the summary still printed, one line saying
    the run succeeded and is committed, exit 4 (docs/operations.md), no file left: not the partial one,
    nor an earlier run's record, which a scheduler would read as this run's."""
    env = cli_env(pg_settings)
    assert cli("seed", "--claims", "200", "--seed", "7", env=env).returncode == 0
    results = tmp_path / "records" / "run.json"
    results.parent.mkdir()
    results.write_text('{"outcome": "an earlier run"}')

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # the record is larger than this

    ran = subprocess.run(
        [sys.executable, "-m", "claims_etl", "run", "--json", "--results", str(results)],
        env=env, capture_output=True, text=True, timeout=300, check=False, preexec_fn=limited,
    )  # fmt: skip
    assert ran.returncode == 4, ran.stderr
    summary = json.loads(ran.stdout)
    assert (summary["outcome"], summary["claims_read"]) == ("succeeded", 200)
    assert _said(ran.stderr) == [
        f"error: --results {results}: the run record could not be written (File too large); the run "
        f"{summary['run_id']} itself finished with outcome succeeded and its warehouse rows are committed "
        f"(claims-etl report {summary['run_id']} shows its record)"
    ]
    assert list(results.parent.iterdir()) == []
    shown = json.loads(cli("report", summary["run_id"], "--json", env=env).stdout)
    assert (shown["status"], shown["claims_priced"]) == ("succeeded", summary["claims_priced"])


def test_a_results_directory_removed_during_an_interrupted_run_keeps_its_exit_code(
    pg_settings: Settings, tmp_path: Path
) -> None:
    """The directory checked before the run is gone when the record is written, after a SIGTERM
    stopped the run: the run's own line and exit code (143), then one line for the record."""
    env = cli_env(pg_settings)
    assert cli("seed", "--claims", "20", "--seed", "8", env=env).returncode == 0
    paused, results = tmp_path / "paused", tmp_path / "records" / "run.json"
    results.parent.mkdir()
    faults = {"CLAIMS_ETL_FAULT": "pause_after_lease", "CLAIMS_ETL_FAULT_PAUSE": "120"}
    run = subprocess.Popen(
        [*FAULTY_CLI, "run", "--results", str(results)],
        env=env | faults | {"CLAIMS_ETL_FAULT_ONCE_FILE": str(paused)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not paused.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(results.parent)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stderr
    said = _said(stderr)
    assert len(said) == 2 and said[0].startswith("interrupted: run "), stderr
    assert said[1].startswith(f"error: --results {results}: the run record could not be written (No such file")
    assert "itself finished with outcome interrupted and its warehouse rows are committed" in said[1]
    assert not results.parent.exists()


def test_export_to_dash_writes_the_csv_to_stdout_and_reference_list_cuts_no_file_name_or_hash(
    pg_settings: Settings,
) -> None:
    env = {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": TARGETS["postgresql"]}
    assert cli("seed", "--claims", "0", env=env).returncode == 0
    ran = json.loads(cli("run", "--json", env=env).stdout)

    exported = cli("export", "-", env=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert ran["run_id"] in {row["run_id"] for row in rows}
    assert {row["kind"] for row in rows} <= {"stage", "metric", "alert"}  # nothing but the CSV on stdout
    assert list(rows[0]) == ["run_id", "started_at", "status", "kind", "name", "labels", "value"]

    releases = json.loads(cli("reference", "list", "--json", env=env).stdout)
    shown = cli("reference", "list", env=env | {"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    words = set(shown.stdout.split())
    for release in releases:
        files = [release["rvu_file"], release["gpci_file"], release["rvu_sha256"], release["gpci_sha256"]]
        assert [name for name in files if name not in words] == []
    assert "…" not in shown.stdout
