"""`claims-etl report [RUN_ID]`: a finished run's timings, throughput, rejections and alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.errors import ConfigurationError


def report_command(
    run_id: Annotated[str | None, typer.Argument(help="a run id [default: the latest run]")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the report as JSON, the HTML charts' data under `charts`")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", metavar="FILE", help="also write the report as one self-contained HTML file", show_default=False
        ),
    ] = None,
    runs: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="runs in the history charts: the last N up to this one")
    ] = 20,
    source_url: opt.SourceUrl = None,
) -> None:
    """A finished run's stage timings, throughput, rejections by rule, cache, resources and alerts."""
    from claims_etl.cli import render  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.ops import html_report, progress_log

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        found = progress_log.recent(settings, limit=1, run_id=run_id)
        if not found:
            raise ConfigurationError(f"no run {run_id!r} recorded" if run_id else "no runs recorded yet")
        run = found[0]
        charts = html_report.chart_data(run, progress_log.recent(settings, limit=runs, until=run["run_id"]))
        if html is not None:
            html_report.write(html, run, charts)
    if as_json:
        invocation.print_json(run | {"charts": charts}, default=str)
    elif html is not None:
        invocation.out().print(f"wrote the report of run {run['run_id']} to {html}", highlight=False, soft_wrap=True)
    else:
        invocation.out().print(render.run_summary(run))
