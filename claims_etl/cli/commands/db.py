"""`claims-etl db init`: the staging, reference and warehouse tables."""

from __future__ import annotations

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.cli.help import HelpCommand, HelpGroup

app = typer.Typer(help="Database set-up.", no_args_is_help=True, cls=HelpGroup)


@app.command("init", cls=HelpCommand)
def init(
    source_url: opt.SourceUrl = None, target_odbc: opt.TargetOdbc = None, target_url: opt.TargetUrl = None
) -> None:
    """Create the staging, reference and warehouse tables where missing."""
    from claims_etl import targets  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.db import source

    settings = invocation.settings(source_url=source_url, target_odbc=target_odbc, target_url=target_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        source.init_source(settings)
        dialect = targets.init_target(settings)
    invocation.out().print(f"staging and reference tables ready; warehouse tables ready ({dialect})")
