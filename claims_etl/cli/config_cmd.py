"""`claims-etl config show`, and the options every command shares, given before the command
(`claims-etl --config /etc/claims-etl.toml --profile prod report`): `--config`, `--profile`,
`--secrets-dir` and `--version`. `run` and `config show` also take the first three after the command."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, get_args

import click
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

import claims_etl
from claims_etl.cli.options import ConfigFile, Profile, SecretsDir
from claims_etl.errors import carries_password, scrub
from claims_etl.settings import Settings

_SHARED = "claims_etl.shared_options"  # key of the shared options in click's context meta
SECRET_SETTINGS = tuple(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


def arguments(**flags: Any) -> dict[str, Any]:
    """The Settings arguments of a command: the shared options given before it, then its own flags
    (those given: None is not given), a command's own winning."""
    context = click.get_current_context(silent=True)
    shared: dict[str, Any] = dict(context.meta.get(_SHARED, {})) if context is not None else {}
    return shared | {key: value for key, value in flags.items() if value is not None}


def file_passwords(settings: Settings, given: dict[str, Any]) -> list[str]:
    """The secret settings whose value in force is the config file's and carries a password: allowed
    (a file readable only by the ETL's user is as good as a secrets directory), but warned about."""
    if settings.config is None:
        return []
    origins = Settings.origins(**given)
    return [
        name
        for name in SECRET_SETTINGS
        if origins[name].startswith("file") and carries_password(_secret(getattr(settings, name)))
    ]


def _secret(value: SecretStr | None) -> str:
    return "" if value is None else value.get_secret_value()


def shown(value: Any) -> Any:
    """A setting's value for people and JSON: secrets without their passwords, paths and dates as text."""
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        return scrub(text) if carries_password(text) else text
    if isinstance(value, Path | date):
        return str(value)
    return value


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"claims-etl {claims_etl.__version__}")
        raise typer.Exit


def register(
    app: typer.Typer,
    build: Callable[..., Settings],
    errors: Callable[[], AbstractContextManager[None]],
    out: Console,
) -> None:
    """Add the shared options and the `config` commands to `app`. `build` is the CLI's settings builder
    (flags in, Settings out, warnings printed) and `errors` its one-line error handler."""

    @app.callback()
    def shared(
        config: ConfigFile = None,
        profile: Profile = None,
        secrets_dir: SecretsDir = None,
        version: Annotated[
            bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")
        ] = False,
    ) -> None:
        """Columnar ETL for professional medical claims."""
        given = {"config": config, "profile": profile, "secrets_dir": secrets_dir}
        click.get_current_context().meta[_SHARED] = {key: value for key, value in given.items() if value is not None}

    config_app = typer.Typer(help="The settings in force and where each comes from.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("show")
    def show(
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
        config: ConfigFile = None,
        profile: Profile = None,
        secrets_dir: SecretsDir = None,
    ) -> None:
        """Every setting in force and where it came from (flag, env, env (_FILE), secrets dir, file,
        file:PROFILE, default); connection strings without their passwords."""
        flags = {"config": config, "profile": profile, "secrets_dir": secrets_dir}
        with errors():
            settings = build(**flags)
            origins = Settings.origins(**arguments(**flags))
        rows = {
            name: {"value": shown(getattr(settings, name)), "from": origins[name]} for name in Settings.model_fields
        }
        if as_json:
            out.print_json(json.dumps(rows))
            return
        table = Table("setting", "value", "from", title="settings in force (each also CLAIMS_ETL_<SETTING>)")
        table.columns[1].overflow = "fold"  # a connection string whole, over several lines
        for name, row in rows.items():
            table.add_row(name, str(row["value"]), row["from"])
        out.print(table)
