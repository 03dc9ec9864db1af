"""`claims-etl reconcile`: source statuses against warehouse rows."""

from __future__ import annotations

from typing import Annotated

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt


def reconcile_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
    source_url: opt.SourceUrl = None,
    target_odbc: opt.TargetOdbc = None,
    target_url: opt.TargetUrl = None,
) -> None:
    """Source statuses against warehouse rows: counts, and the claim ids that differ. Exit 1 on any difference."""
    from claims_etl.cli import render  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.ops import reconcile as reconciliation

    settings = invocation.settings(source_url=source_url, target_odbc=target_odbc, target_url=target_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        found = reconciliation.reconcile(settings)
    report = found.as_dict()
    if as_json:
        invocation.print_json(report)
    else:
        invocation.out().print(render.reconciliation(report))
    if not found.consistent:
        raise typer.Exit(code=1)
