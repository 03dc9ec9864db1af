"""The command line without a database: a bad setting is a usage error, an unreachable source exits 1, each
in one clear line without the password (docs/spec.md §6); help that cuts no name at 80 columns, `-h`,
one suggestion for a mistyped command, `rules list` and `config show` as a user sees them, and a cold
start free of the data libraries. The commands on the real databases are in
tests/integration/cli/test_cli_commands.py."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from claims_etl.cli.app import app
from tests.factories import RUN_DATE

PASSWORD = "s3cr3t-Pa55"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOG_FORMAT": "console",  # `error: ...` lines (a captured stderr gets JSON by default)
    } | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_unreachable_source_exits_1_without_the_password() -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/claims_etl"
    result = cli("seed", "--claims", "1", env={"CLAIMS_ETL_SOURCE_URL": url})
    assert_one_clear_line(result, 1, "cannot reach the source database")


def test_bad_setting_is_a_usage_error() -> None:
    result = cli("run", env={"CLAIMS_ETL_PARTITIONS": "zero"})
    assert_one_clear_line(result, 2, "partitions")


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_run_help_at_80_columns_shows_every_option_and_variable_name_whole() -> None:
    shown = cli("run", "--help", env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    run = dict(COMMANDS)[("run",)]
    names = [name for param in run.params for name in (*param.opts, *param.secondary_opts)]
    variables = {name for param in run.params for name in re.findall(r"CLAIMS_ETL_\w+", getattr(param, "help", ""))}
    words = set(re.findall(r"[\w-]+", shown.stdout))
    assert [name for name in names if name not in words] == []
    assert len(variables) > 20 and sorted(variables - words) == []
    assert "…" not in shown.stdout and max(map(len, shown.stdout.splitlines())) <= 80
    panels = re.findall(r"╭─ (.+?) ─", shown.stdout)
    assert panels == ["Options", "Performance", "Monitoring and logs", "Configuration", "Advanced"]
    everyday = shown.stdout.split("╭─ Performance")[0]
    assert all(flag in everyday for flag in ("--source-url", "--target-odbc", "--limit", "--dry-run", "--json"))


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda path: " ".join(path) or "claims-etl")
def test_every_help_answers_to_h_as_to_help_and_cuts_nothing_at_80_columns(path: tuple[str, ...]) -> None:
    long, short = (cli(*path, flag, env={"COLUMNS": "80"}) for flag in ("--help", "-h"))
    assert long.returncode == short.returncode == 0, short.stderr
    assert short.stdout == long.stdout and "Usage: claims-etl" in long.stdout
    assert "…" not in long.stdout


def test_a_mistyped_command_suggests_the_right_one_once_and_exits_2() -> None:
    result = cli("rn")
    assert result.returncode == 2
    assert result.stderr.count("Did you mean 'run'?") == 1 and "No such command 'rn'" in result.stderr


def test_rules_list_without_a_file_says_so_instead_of_hashing_nothing(tmp_path: Path) -> None:
    empty_input = hashlib.sha256(b"").hexdigest()
    shown = cli("rules", "list", env={"COLUMNS": "120"})
    assert shown.returncode == 0, shown.stderr
    assert "rules in force: the defaults, no rules file" in shown.stdout and empty_input[:12] not in shown.stdout
    rules = tmp_path / "payer.toml"
    rules.write_text("[V10]\ndays = 90\n")
    with_file = cli("rules", "list", "--rules", str(rules), env={"COLUMNS": "200"})
    assert f"sha256 {hashlib.sha256(rules.read_bytes()).hexdigest()}" in with_file.stdout


def test_config_show_hides_the_fault_injection_settings_unless_one_is_set() -> None:
    faults = ("fault", "fault_once_file", "fault_pause")
    shown = cli("config", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert "limit" in settings and [name for name in faults if name in settings] == []
    assert not any(line.split("│")[1].strip().startswith("fault") for line in _table_rows(cli("config", "show")))
    set_one = json.loads(cli("config", "show", "--json", env={"CLAIMS_ETL_FAULT": "load"}).stdout)
    assert set_one["fault"] == {"value": "load", "from": "env"} and "fault_pause" not in set_one


def _table_rows(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.count("│") >= 3]


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_version_and_help_import_no_data_library_or_driver(args: list[str]) -> None:
    """Their cold start (`make bench-cold` times it): no Polars, Arrow, drivers, pydantic settings or
    typer's rich help (which imports markdown and pygments)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "claims_etl", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    heavy = {"polars", "pyarrow", "psycopg", "turbodbc", "connectorx", "dask", "pydantic_settings", "structlog"}
    assert sorted(heavy & imported) == [] and "typer.rich_utils" not in imported
