"""Config files, dry runs and --fail-on-alert on the real databases (docs/operations.md): a dry run
changes nothing in either database and counts what the real run then loads; flag > env > config file
(its profile over its top level) > default, each layer seen in what a dry run reads; the secrets
directory; exit 3 when an alert fired. The cases that need no database: tests/unit/settings/test_config_files.py."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import claims_etl as ce
from claims_etl import errors as ce_errors
from tests.db import SOURCE_URL, TARGETS, cli_env
from tests.seeding import seeded_fixture

SEEDED = 300


# 300 pending claims, a fifth of them invalid (rejections by several rules), and their reference years.
seeded = seeded_fixture(SEEDED, seed=7, invalid_rate=0.2, on="pg_settings", subdirectory="reference")


def claims_etl(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def dry_run(env: dict[str, str], *args: str, cwd: Path | None = None) -> dict[str, Any]:
    result = claims_etl(env, "run", "--dry-run", "--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    counted: dict[str, Any] = json.loads(result.stdout)
    return counted


def snapshot() -> dict[str, tuple[Any, ...]]:
    """Every source and warehouse table (both are in the test database): its row count and a checksum
    of its rows."""
    with psycopg.connect(SOURCE_URL) as connection:
        tables = connection.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('staging', 'warehouse') AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        return {
            table: connection.execute(  # type: ignore[misc]
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} AS t"
            ).fetchone()
            for (table,) in tables
        }


def loaded_by(run_id: str) -> dict[str, Any]:
    """What a run wrote to the warehouse: claims, lines and dollars."""
    with psycopg.connect(SOURCE_URL) as connection:
        priced, rejected = connection.execute(
            "SELECT (SELECT count(*) FROM warehouse.priced_claims WHERE run_id = %(r)s), "
            "(SELECT count(*) FROM warehouse.rejected_claims WHERE run_id = %(r)s)",
            {"r": run_id},
        ).fetchone()  # type: ignore[misc]
        lines, charge, allowed = connection.execute(
            "SELECT count(*), sum(charge), sum(allowed_amount) FROM warehouse.priced_claim_lines WHERE run_id = %s",
            [run_id],
        ).fetchone()  # type: ignore[misc]
    return {
        "claims_priced": priced,
        "claims_rejected": rejected,
        "lines_priced": lines,
        "charge": charge,
        "allowed": allowed,
    }


def test_a_dry_run_changes_nothing_and_counts_what_the_run_then_loads(seeded: ce.Settings) -> None:
    first = ce.run(seeded.model_copy(update={"limit": 50}))  # the warehouse, run log and leases tables hold rows
    assert first.status == "succeeded" and first.claims_read == 50
    env = cli_env(seeded)
    before = snapshot()
    assert before["warehouse.priced_claims"][0] > 0 and before["staging.etl_run_log"][0] > 0

    counted = dry_run(env, "--limit", "200")

    assert snapshot() == before  # no lease, status, run log row or etl_runs row: not one row changed
    run = claims_etl(env, "run", "--json", "--limit", "200")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    loaded = loaded_by(summary["run_id"])
    assert counted["claims_read"] == summary["claims_read"] == 200
    assert (counted["claims_priced"], counted["claims_rejected"]) == (
        summary["claims_priced"],
        summary["claims_rejected"],
    )
    assert (counted["claims_priced"], counted["claims_rejected"], counted["lines_priced"]) == (
        loaded["claims_priced"],
        loaded["claims_rejected"],
        loaded["lines_priced"],
    )
    assert (Decimal(counted["charge"]), Decimal(counted["allowed"])) == (loaded["charge"], loaded["allowed"])
    assert counted["claims_rejected"] > 0 and counted["rejections_by_rule"] == summary["metrics"]["rejections_by_rule"]
    assert ce.dry_run(seeded).claims_read == SEEDED - 250  # what is left pending


def test_flag_beats_env_beats_profile_beats_config_file_beats_default(
    seeded: ce.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "claims-etl.toml").write_text("limit = 40\nrange_claims = 7\n\n[profiles.prod]\nlimit = 30\n")
    config = tmp_path / "claims-etl.toml"
    monkeypatch.delenv("CLAIMS_ETL_LIMIT", raising=False)
    connections = {"source_url": SOURCE_URL, "target_odbc": TARGETS["postgresql"], "run_date": seeded.run_date}

    assert ce.dry_run(ce.Settings(**connections)).claims_read == SEEDED  # the default: no limit
    assert ce.dry_run(ce.Settings(**connections, config=config)).claims_read == 40  # in pages of 7 (the file's)
    assert ce.dry_run(ce.Settings(**connections, config=config, profile="prod")).claims_read == 30
    monkeypatch.setenv("CLAIMS_ETL_LIMIT", "20")
    assert ce.dry_run(ce.Settings(**connections, config=config, profile="prod")).claims_read == 20
    assert ce.dry_run(ce.Settings(**connections, config=config, profile="prod", limit=10)).claims_read == 10
    # The command line: ./claims-etl.toml read without being named, the profile from its variable, a flag over both.
    env = cli_env(seeded, CLAIMS_ETL_PROFILE="prod")
    assert dry_run(env, cwd=tmp_path)["claims_read"] == 30
    shared = claims_etl(
        env | {"CLAIMS_ETL_LIMIT": "20"}, "--config", str(config), "run", "--dry-run", "--json", "--limit", "9"
    )
    assert shared.returncode == 0 and json.loads(shared.stdout)["claims_read"] == 9, shared.stderr


def test_connection_strings_from_a_secrets_directory(seeded: ce.Settings, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "source_url").write_text(SOURCE_URL + "\n")
    (secrets / "target_odbc").write_text(TARGETS["postgresql"])
    env = {key: value for key, value in cli_env(seeded).items() if "URL" not in key and "ODBC" not in key}

    assert dry_run(env | {"CLAIMS_ETL_SECRETS_DIR": str(secrets)}, "--limit", "5")["claims_read"] == 5
    run = claims_etl(env, "--secrets-dir", str(secrets), "run", "--json", "--limit", "5")
    assert run.returncode == 0 and json.loads(run.stdout)["claims_priced"] > 0, run.stderr
    # Without the directory the defaults are in force (`make demo`'s local database, which may exist or not).
    shown = claims_etl(env, "config", "show", "--json")
    sources = {name: entry["from"] for name, entry in json.loads(shown.stdout).items()}
    assert shown.returncode == 0 and sources["source_url"] == sources["target_odbc"] == "default", shown.stderr


def test_fail_on_alert_exits_3_after_a_successful_run(seeded: ce.Settings, tmp_path: Path) -> None:
    config = tmp_path / "claims-etl.toml"
    config.write_text(  # the base quiets every alert (a busy test machine's CPU, a cold cache); the profile forces one
        "alert_max_rejection_rate = 1.0\nalert_max_cpu_percent = 1000.0\nalert_max_memory_percent = 1000.0\n"
        "alert_min_cache_hit_rate = 0.0\nalert_max_connection_use = 1000.0\nalert_min_claims_per_second = 0.0\n\n"
        "[profiles.strict]\nalert_min_claims_per_second = 1e12\nalert_baseline_min_claims = 1\n"
    )
    env = cli_env(seeded)

    calm = claims_etl(env, "run", "--json", "--limit", "100", "--config", str(config), "--fail-on-alert")
    assert calm.returncode == 0 and json.loads(calm.stdout)["alerts"] == [], calm.stderr
    failing = claims_etl(env, "run", "--json", "--config", str(config), "--profile", "strict", "--fail-on-alert")

    assert failing.returncode == 3, failing.stderr
    summary = json.loads(failing.stdout)
    assert f"run {summary['run_id']} succeeded, but alerts fired (--fail-on-alert): throughput_low" in failing.stderr
    assert [alert["name"] for alert in summary["alerts"]] == ["throughput_low"]
    assert (
        summary["status"] == "succeeded" and loaded_by(summary["run_id"])["claims_priced"] == summary["claims_priced"]
    )


def test_a_dry_run_stops_on_unpriceable_claims_or_skips_them_as_the_run_does(seeded: ce.Settings) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:  # as if 2025 had never been loaded
        for table in ("rvu", "gpci", "reference_releases"):
            source.execute(f"DELETE FROM staging.{table} WHERE year = 2025")
        in_2025 = source.execute(
            "SELECT count(DISTINCT claim_id) FROM staging.claim_lines WHERE service_date < '2026-01-01'"
        ).fetchone()[0]  # type: ignore[index]
    assert 0 < in_2025 < SEEDED
    with pytest.raises(ce_errors.ConfigurationError, match=f"2025 \\({in_2025} claims\\)"):
        ce.dry_run(seeded)

    skipping = seeded.model_copy(update={"skip_unpriceable": True, "limit": 80})
    counted = ce.dry_run(skipping)
    assert counted.claims_unpriceable == {2025: in_2025} and snapshot()["staging.range_leases"][0] == 0
    run = ce.run(skipping)
    assert (counted.claims_read, counted.claims_priced, counted.claims_rejected) == (
        run.claims_read,
        run.claims_priced,
        run.claims_rejected,
    )
    assert counted.claims_read == 80 and dict(counted.rejections_by_rule) == run.metrics.rejections_by_rule
