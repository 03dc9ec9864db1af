"""`claims-etl explain CLAIM_ID`: one claim's price as a worked computation."""

from __future__ import annotations

from typing import Annotated

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.errors import StageError


def explain_command(
    claim_id: Annotated[int, typer.Argument(help="the claim's claim_id (any status)", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="the explanation as JSON")] = False,
    rules: opt.RulesFile = None,
    run_date: opt.RunDate = None,
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
    source_url: opt.SourceUrl = None,
) -> None:
    """One claim's price, line by line, as a worked computation (release, RVU and GPCI rows, each step,
    allowed amounts), or the rules a rejected claim broke; validated and priced as a run would now."""
    from claims_etl.cli import explain_view  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.engine import explain

    settings = invocation.settings(
        rules_file=rules,
        run_date=run_date.date() if run_date else None,
        config=config,
        profile=profile,
        secrets_dir=secrets_dir,
        source_url=source_url,
    )
    with invocation.one_line_errors(*invocation.secrets(settings)):
        found = explain.explain(settings, claim_id)
    if as_json:
        invocation.print_json(found)
    else:
        invocation.out().print(explain_view.explanation(found), highlight=False)
    if not found["consistent"]:  # printed above; the exit code tells a script too
        problems = "; ".join(found["inconsistencies"])
        invocation.fail(
            StageError("explain", f"claim {claim_id}: the worked computation differs from the engine: {problems}")
        )
