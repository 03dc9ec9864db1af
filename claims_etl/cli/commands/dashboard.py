"""`claims-etl dashboard`: a live view of the runs in progress and the last runs."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt


def dashboard_command(
    interval: Annotated[float, typer.Option(min=0.1, metavar="S", help="refresh every S seconds")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100, metavar="N", help="recent runs to list")] = 10,
    source_url: opt.SourceUrl = None,
) -> None:
    """Live view: runs in progress with their stages, and the last runs. Ctrl-C to leave."""
    from rich.live import Live  # cold start (claims_etl/cli/invocation.py)

    from claims_etl.cli import render
    from claims_etl.ops import progress_log

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        if once:
            invocation.out().print(render.dashboard(progress_log.recent(settings, limit=runs)))
            return
        first = render.dashboard(progress_log.recent(settings, limit=runs))
        with Live(first, console=invocation.out(), screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(render.dashboard(progress_log.recent(settings, limit=runs)))
            except KeyboardInterrupt:
                return
