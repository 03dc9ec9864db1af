"""`claims-etl seed`: synthetic reference files and pending claims, for a demo or a benchmark."""

from __future__ import annotations

from typing import Annotated

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt


def seed_command(
    claims: Annotated[int, typer.Option(min=0, metavar="N", help="pending claims to add")] = 10_000,
    seed: Annotated[int, typer.Option(metavar="N", help="random seed (same seed, same data)")] = 42,
    invalid_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, metavar="RATE", help="share of invalid claims")
    ] = 0.05,
    source_url: opt.SourceUrl = None,
) -> None:
    """Write synthetic CMS-layout reference files, load them, and add N pending claims."""
    from claims_etl import synthetic  # cold start (claims_etl/cli/invocation.py)

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        result = synthetic.seed(settings, claims, seed=seed, invalid_rate=invalid_rate)
    invocation.out().print(
        f"seeded {result.claims} claims ({result.lines} lines, {result.invalid} invalid) "
        f"from claim_id {result.first_claim_id}"
    )
