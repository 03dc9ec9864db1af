"""`claims-etl reprice`: processed claims priced again after a fee schedule revision."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt


def reprice_command(
    release: Annotated[str, typer.Option(help="the revised release, e.g. 2026B (loaded first)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count the claims and dollars that would change")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    verbose: opt.Verbose = False,
    log_format: opt.LogFormat = None,
    source_url: opt.SourceUrl = None,
    target_odbc: opt.TargetOdbc = None,
    target_url: opt.TargetUrl = None,
) -> None:
    """Price processed claims in a release's window again; replace those whose amounts change (history kept)."""
    from claims_etl.engine import reprice as repricing  # cold start (claims_etl/cli/invocation.py)

    invocation.configure_logging(verbose, log_format)
    settings = invocation.settings(
        source_url=source_url, target_odbc=target_odbc, target_url=target_url, log_format=log_format
    )
    invocation.configure_logging(verbose, settings.log_format)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        result = repricing.reprice(settings, release, dry_run=dry_run)
    summary = result.as_dict()
    if as_json:
        invocation.print_json(summary)
    else:
        invocation.out().print(_sentence(release, summary, dry_run=dry_run))


def _sentence(release: str, summary: dict[str, Any], *, dry_run: bool) -> str:
    would = "would change" if dry_run else "changed"
    return (
        f"release {release}: {summary['claims_changed']:,} of {summary['claims_read']:,} claims {would} "
        f"(allowed {summary['allowed_before']} -> {summary['allowed_after']}, {summary['allowed_change']}); "
        f"{summary['claims_not_priceable']:,} no longer priceable, left as they were"
    )
