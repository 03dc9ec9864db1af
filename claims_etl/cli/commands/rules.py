"""`claims-etl rules list`: the validation rules as the payer's rules file sets them."""

from __future__ import annotations

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.cli.help import HelpCommand, HelpGroup

app = typer.Typer(help="Validation rules and the payer's rules file.", no_args_is_help=True, cls=HelpGroup)


@app.command("list", cls=HelpCommand)
def list_rules(as_json: opt.Json = False, rules: opt.RulesFile = None) -> None:
    """Every rule as the rules file sets it: id, level, severity, enabled, parameters, description."""
    from claims_etl.cli import render  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.stages.rules import rule_table

    settings = invocation.settings(rules_file=rules)
    rule_set = settings.rules()
    table = rule_table(rule_set.config)
    if as_json:  # the sha256 as each run records it (docs/spec.md §5.1): of the empty string without a file
        invocation.print_json({"rules_file": rule_set.path, "rules_sha256": rule_set.sha256, "rules": table})
    else:
        invocation.out().print(render.rules_table(table, rule_set.path, rule_set.sha256))
