"""`claims-etl config show`: every setting in force and where it came from."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.cli.help import HelpCommand, HelpGroup
from claims_etl.errors import carries_password, scrub

app = typer.Typer(help="The settings in force and where each comes from.", no_args_is_help=True, cls=HelpGroup)

# Test seams (claims_etl/dev/fault_hooks.py), not settings an operator sets: shown only when set.
FAULT_SETTINGS = ("fault", "fault_once_file", "fault_pause")


def shown(value: Any) -> Any:
    """A setting's value for people and JSON: secrets without their passwords, paths and dates as text."""
    from pydantic import SecretStr  # cold start (claims_etl/cli/invocation.py)

    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        return scrub(text) if carries_password(text) else text
    if isinstance(value, Path | date):
        return str(value)
    return value


@app.command("show", cls=HelpCommand)
def show(
    as_json: opt.Json = False,
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
) -> None:
    """Every setting in force and where it came from (flag, env, env (_FILE), secrets dir, file,
    file:PROFILE, default); connection strings without their passwords."""
    flags = {"config": config, "profile": profile, "secrets_dir": secrets_dir}
    settings = invocation.settings(**flags)
    with invocation.one_line_errors():
        origins = type(settings).origins(**invocation.arguments(**flags))
    rows = {
        name: {"value": shown(getattr(settings, name)), "from": origins[name]}
        for name in type(settings).model_fields
        if name not in FAULT_SETTINGS or origins[name] != "default"
    }
    if as_json:
        invocation.print_json(rows)
    else:
        invocation.out().print(_table(rows))


def _table(rows: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table  # cold start (claims_etl/cli/invocation.py)

    table = Table("setting", "value", "from", title="settings in force (each also CLAIMS_ETL_<SETTING>)")
    table.columns[1].overflow = "fold"  # a connection string whole, over several lines
    for name, row in rows.items():
        table.add_row(name, str(row["value"]), row["from"])
    return table
