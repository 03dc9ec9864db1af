"""The command line on the real databases: exit codes and one clear line for bad input, never a password
(docs/spec.md §6), `export -` and `reference list` as a user sees them; the cases that need no database
are in tests/unit/cli/test_app.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, write_reference_files
from tests.db import SOURCE_URL, TARGETS
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
