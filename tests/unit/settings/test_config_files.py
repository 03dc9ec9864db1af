"""Config files and the command line's orchestration options without a database (docs/operations.md):
precedence flag > env > secret files > config file (profile over top level) > default and where each
value came from; a bad file, key or profile is one line and exit 2; `config show` never prints a
password; `--version`; every option bound to a setting names its variable in `--help`. On the real
databases: tests/integration/settings/test_config_orchestration.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
import typer

import claims_etl
from claims_etl.cli.app import app
from claims_etl.cli.options import OPTION_SETTINGS
from claims_etl.engine import run as engine_run
from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings
from tests.unit.cli.test_app import PASSWORD, assert_one_clear_line


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Origins are compared exactly: `make test` exports CLAIMS_ETL_SOURCE_URL and _TARGET_ODBC, and an
    earlier run in this process points ODBCSYSINI at its private ODBC files; either would win over the file."""
    for name in [name for name in os.environ if name.startswith("CLAIMS_ETL_") and name != "CLAIMS_ETL_TEST_DB"]:
        monkeypatch.delenv(name)
    for name in ("ODBCSYSINI", "ODBCINSTINI"):
        monkeypatch.delenv(name, raising=False)


CONFIG = """
limit = 40
range_claims = 500
load_chunk_claims = 700
odbc_sysini = "/opt/odbc"

[profiles.prod]
limit = 30
batch_id = "P1"
"""


def claims_etl_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env={"PATH": "/usr/bin:/bin"} | (env or {}), cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file, in a working directory without one and an environment without CLAIMS_ETL_*."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CLAIMS_ETL_LIMIT", "CLAIMS_ETL_RANGE_CLAIMS", "CLAIMS_ETL_CONFIG", "CLAIMS_ETL_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    path = tmp_path / "etc" / "claims-etl.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return path


def test_flag_beats_env_beats_profile_beats_file_beats_default(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_ETL_RANGE_CLAIMS", "600")
    settings = Settings(config=config, profile="prod", load_chunk_claims=800)
    origins = Settings.origins(config=config, profile="prod", load_chunk_claims=800)

    assert (settings.load_chunk_claims, origins["load_chunk_claims"]) == (800, "flag")  # over the file's 700
    assert (settings.range_claims, origins["range_claims"]) == (600, "env")  # over the file's 500
    assert (settings.limit, origins["limit"]) == (30, "file:prod")  # the profile over the top level's 40
    assert (settings.batch_id, origins["batch_id"]) == ("P1", "file:prod")
    assert (settings.odbc_sysini, origins["odbc_sysini"]) == ("/opt/odbc", "file")  # an aliased field by its name
    assert (settings.partitions, origins["partitions"]) == (Settings().partitions, "default")
    assert Settings(config=config).limit == 40 and Settings().limit is None


def test_the_config_file_and_profile_come_from_their_variables_or_the_working_directory(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMS_ETL_CONFIG", str(config))
    monkeypatch.setenv("CLAIMS_ETL_PROFILE", "prod")
    assert Settings().limit == 30 and Settings.origins()["config"] == "env"
    monkeypatch.delenv("CLAIMS_ETL_CONFIG")
    monkeypatch.delenv("CLAIMS_ETL_PROFILE")
    (config.parent.parent / "claims-etl.toml").write_text("limit = 7\n")  # the working directory's
    assert (Settings().limit, Settings().config, Settings.origins()["config"]) == (
        7,
        Path("claims-etl.toml"),
        "default",
    )


def test_every_setting_can_be_set_in_the_config_file(config: Path) -> None:
    keys = [name for name in Settings.model_fields if name not in ("config", "profile", "secrets_dir")]
    config.write_text("".join(f'{name} = "x"\n' for name in keys))  # the keys, not their values, are checked here
    assert {name: origin for name, origin in Settings.origins(config=config).items() if name in keys} == dict.fromkeys(
        keys, "file"
    )


@pytest.mark.parametrize(
    ("text", "profile", "fragment"),
    [
        ("limit = 3\nlimitt = 4\n", None, "unknown setting 'limitt'"),
        ("[profiles.prod]\nbatch = 'B'\n", "prod", "unknown setting 'batch' in [profiles.prod]"),
        ("limit = 3\n[profiles.prod]\nlimit = 4\n", "test", "no profile 'test' (profiles: prod)"),
        ("config = 'other.toml'\n", None, "unknown setting 'config'"),
        ("limit = \n", None, "not valid TOML: Invalid value (at line 1, column 9)"),
    ],
)
def test_a_bad_config_file_names_the_key_or_profile_and_the_file(
    config: Path, text: str, profile: str | None, fragment: str
) -> None:
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=r".*".join(map(_escaped, (str(config), fragment)))):
        Settings(config=config, profile=profile)
    flags = ["--profile", profile] if profile else []
    result = claims_etl_cli("--config", str(config), *flags, "config", "show")
    assert_one_clear_line(result, 2, fragment)


def _escaped(text: str) -> str:
    return "".join(f"\\{c}" if c in r"[](){}.*+?^$|\\" else c for c in text)


def test_a_profile_without_a_file_and_a_missing_secrets_directory_are_usage_errors(config: Path) -> None:
    assert_one_clear_line(
        claims_etl_cli("config", "show", "--profile", "prod"), 2, "profile 'prod' given but no config"
    )
    missing = claims_etl_cli("config", "show", env={"CLAIMS_ETL_SECRETS_DIR": str(config.parent / "none")})
    assert_one_clear_line(missing, 2, "secrets directory")
    unreadable = claims_etl_cli("run", "--config", str(config.parent / "no.toml"))  # a run's own --config
    assert unreadable.returncode == 2 and f"{config.parent / 'no.toml'}: cannot read it" in unreadable.stderr


def test_a_secrets_directory_holds_one_file_per_setting_below_the_environment(tmp_path: Path) -> None:
    (tmp_path / "source_url").write_text("postgresql://etl@from-dir/claims\n")
    (tmp_path / "target_odbc").write_text("Driver={X};Server=from-dir")
    environment = {"CLAIMS_ETL_TARGET_ODBC": "Driver={X};Server=from-env"}
    result = claims_etl_cli("--secrets-dir", str(tmp_path), "config", "show", "--json", env=environment)
    shown = json.loads(result.stdout)
    assert shown["source_url"] == {"value": "postgresql://etl@from-dir/claims", "from": "secrets dir"}
    assert shown["target_odbc"] == {"value": "Driver={X};Server=from-env", "from": "env"}


def test_config_show_masks_passwords_and_warns_once_of_one_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "claims-etl.toml"
    config.write_text(f'limit = 5\n[profiles.prod]\ntarget_odbc = "Driver={{X}};Server=db;Uid=etl;Pwd={PASSWORD}"\n')
    (tmp_path / "url").write_text(f"postgresql://etl:{PASSWORD}@db:5432/claims")
    environment = {
        "CLAIMS_ETL_SOURCE_URL_FILE": str(tmp_path / "url"),
        "CLAIMS_ETL_REDIS_URL": f"redis://:{PASSWORD}@r",
    }

    for output in (["--json"], []):
        result = claims_etl_cli(
            "--config", str(config), "--profile", "prod", "config", "show", *output, env=environment
        )
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(warnings) == 1 and warnings[0].startswith(f"warning: target_odbc in {config} carries a password")
    shown = json.loads(claims_etl_cli("--config", str(config), "config", "show", "--json", env=environment).stdout)
    assert shown["source_url"] == {"value": "postgresql://etl:***@db:5432/claims", "from": "env (_FILE)"}
    assert shown["redis_url"] == {"value": "redis://:***@r", "from": "env"}
    assert shown["limit"] == {"value": 5, "from": "file"} and shown["config"]["from"] == "flag"


def test_version_is_the_installed_distributions() -> None:
    result = claims_etl_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"claims-etl {version('claims-etl')}\n")
    assert claims_etl.__version__ == version("claims-etl")
    assert claims_etl.run is engine_run.run and "run" in claims_etl.__all__ and "dry_run" in claims_etl.__all__


def _options(command: click.Command, path: str = "claims-etl") -> list[tuple[str, click.Option]]:
    found = [(path, param) for param in command.params if isinstance(param, click.Option)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _options(sub, f"{path} {name}")
    return found


def test_help_names_the_variable_of_every_option_bound_to_a_setting() -> None:
    bound = [
        (path, option, OPTION_SETTINGS.get(option.name or "", option.name or ""))
        for path, option in _options(typer.main.get_command(app))
        if OPTION_SETTINGS.get(option.name or "", option.name) in Settings.model_fields
    ]
    missing = [
        f"{path} --{option.name}"
        for path, option, name in bound
        if f"CLAIMS_ETL_{name.upper()}" not in (option.help or "")
    ]
    assert missing == []
    run_settings = {name for path, _, name in bound if path == "claims-etl run"}
    assert {"batch_id", "limit", "range_claims", "load_chunk_claims", "run_date", "config", "profile"} <= run_settings
    assert len(bound) > 40  # every command's connection flags, the shared options and the run's
