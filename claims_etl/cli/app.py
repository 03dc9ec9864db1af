"""`claims-etl` command line (typer + rich), assembled from claims_etl/cli/commands/. Every command builds
the one Settings object from the environment (`CLAIMS_ETL_*`) and its flags, and turns a known error
into one line and an exit code (claims_etl/cli/invocation.py). The options given before any command
(`claims-etl --config /etc/claims-etl.toml --profile prod report`) are the shared ones: `--config`,
`--profile`, `--secrets-dir` and `--version`; `run`, `explain` and `config show` take the first three
after the command too.

Cold start: importing this module loads typer and the command modules, not what the commands work
with, so `--help` and `--version` answer at once (docs/performance.md)."""

from __future__ import annotations

import atexit
import os
import sys
from contextlib import suppress
from typing import Annotated

import click
import typer

import claims_etl
from claims_etl.cli import options as opt
from claims_etl.cli.commands import (
    config,
    dashboard,
    db,
    explain,
    export,
    reconcile,
    reference,
    report,
    reprice,
    rules,
    run,
    seed,
)
from claims_etl.cli.help import HelpCommand, HelpGroup
from claims_etl.cli.invocation import SHARED

# No rich tracebacks with locals: they would print claim rows (PHI) and connection strings. Click
# suggests a close command name itself, so typer's own suggestion (a second "Did you mean") is off.
app = typer.Typer(
    help="Columnar ETL for professional medical claims.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    suggest_commands=False,
    cls=HelpGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RUNS = "Runs"
INSPECT = "Inspect runs and claims"
SET_UP = "Set-up"

app.command("run", cls=HelpCommand, rich_help_panel=RUNS)(run.run_command)
app.command("reprice", cls=HelpCommand, rich_help_panel=RUNS)(reprice.reprice_command)
app.command("report", cls=HelpCommand, rich_help_panel=INSPECT)(report.report_command)
app.command("dashboard", cls=HelpCommand, rich_help_panel=INSPECT)(dashboard.dashboard_command)
app.command("explain", cls=HelpCommand, rich_help_panel=INSPECT)(explain.explain_command)
app.command("reconcile", cls=HelpCommand, rich_help_panel=INSPECT)(reconcile.reconcile_command)
app.command("export", cls=HelpCommand, rich_help_panel=INSPECT)(export.export_command)
app.add_typer(db.app, name="db", rich_help_panel=SET_UP)
app.add_typer(reference.app, name="reference", rich_help_panel=SET_UP)
app.add_typer(rules.app, name="rules", rich_help_panel=SET_UP)
app.add_typer(config.app, name="config", rich_help_panel=SET_UP)
app.command("seed", cls=HelpCommand, rich_help_panel=SET_UP)(seed.seed_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"claims-etl {claims_etl.__version__}")
        raise typer.Exit


@app.callback()
def shared(
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")
    ] = False,
) -> None:
    """Columnar ETL for professional medical claims."""
    given = {"config": config, "profile": profile, "secrets_dir": secrets_dir}
    click.get_current_context().meta[SHARED] = {key: value for key, value in given.items() if value is not None}


def main() -> None:
    """The console script and `python -m claims_etl`: the command, then the exit without the
    interpreter's own teardown, which frees every module and object of Polars, Arrow and the drivers
    one by one and added a fifth of a second to each command (docs/performance.md, cold start). What
    an exit must do still happens: the atexit handlers (logging's flush, multiprocessing's clean-up)
    and the flush of stdout and stderr. Commands close their own files and sessions before returning."""
    try:
        app(prog_name="claims-etl")
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    atexit._run_exitfuncs()  # the standard library's only way to run them before os._exit
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe (`| head`) or a closed stream
            stream.flush()
    os._exit(code)


def _exit_code(code: str | int | None) -> int:
    """SystemExit's code as an exit status, as the interpreter turns it into one."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
