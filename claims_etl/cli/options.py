"""Every command-line option the commands share, declared once. Each option bound to a setting names
its `CLAIMS_ETL_*` variable in its help, and typer never reads that variable itself (only
claims_etl/settings.py reads the environment), so a flag beats the variable, which beats the config
file, which beats the default (docs/operations.md).

Options without a panel are the everyday ones, shown first in `--help`; the others are grouped into
the panels below. Metavars are short on purpose: at 80 columns the help column then stays wide enough
for the longest variable name, which a narrower column would cut or fold (cli/help.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import click
import typer

PERFORMANCE = "Performance"
MONITORING = "Monitoring and logs"
CONFIGURATION = "Configuration"
ADVANCED = "Advanced"

# An option whose parameter name is not its setting's name.
OPTION_SETTINGS = {"rules": "rules_file"}


def env(name: str) -> str:
    """The help suffix naming a setting's variable."""
    return f"[env CLAIMS_ETL_{name.upper()}]"


def env_or_file(name: str) -> str:
    """The help suffix of a secret setting, which may also be read from a file."""
    variable = f"CLAIMS_ETL_{name.upper()}"
    return f"[env {variable}, or a file: {variable}_FILE]"


# Connections: everyday, on every command that reaches a database.
SourceUrl = Annotated[
    str | None,
    typer.Option("--source-url", metavar="URL", help=f"PostgreSQL URL {env_or_file('source_url')}", show_default=False),
]
TargetOdbc = Annotated[
    str | None,
    typer.Option(
        "--target-odbc",
        metavar="ODBC",
        help=f"ODBC connection string {env_or_file('target_odbc')}",
        show_default=False,
    ),
]
TargetUrl = Annotated[
    str | None,
    typer.Option(
        "--target-url",
        metavar="URL",
        help="a PostgreSQL warehouse's URL, loaded by COPY; set, it is used instead of the ODBC string "
        f"{env_or_file('target_url')}",
        show_default=False,
    ),
]
RulesFile = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        metavar="FILE",
        help=f"the payer's rules file (TOML, docs/spec.md §5.1) {env('rules_file')}; default: V01-V17",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]
SummaryJson = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]
RunJson = Annotated[bool, typer.Option("--json", help="print the run record as JSON (docs/run-record.schema.json)")]
Results = Annotated[
    Path | None,
    typer.Option(
        "--results",
        metavar="FILE",
        help="also write the run record to FILE, whatever the run's outcome",
        show_default=False,
    ),
]

# The run's everyday options.
BatchId = Annotated[
    str | None, typer.Option(metavar="TEXT", help=f"only this submission batch {env('batch_id')}", show_default=False)
]
Limit = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help="at most N claims in all, counted when leased: first those of dead runs' ranges taken over "
        "(in claim_id order, whole while they fit, the first that does not cut after the claims that do, "
        f"the rest left for a later run), then new pending claims up to N {env('limit')}",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="read, validate and price the pending claims and report counts and dollars; lease and write nothing",
    ),
]
SkipUnpriceable = Annotated[
    bool | None,
    typer.Option(
        "--skip-unpriceable",
        help=f"leave claims no loaded fee schedule release prices pending, instead of exit 2 {env('skip_unpriceable')}",
    ),
]

# Performance: how the run spreads its work.
Partitions = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=64,
        metavar="N",
        help=f"parallel extract partitions [default: cores] {env('partitions')}",
        rich_help_panel=PERFORMANCE,
    ),
]
Engine = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help=f"local (this process) or dask (one task per claim range) [default: local] {env('engine')}",
        rich_help_panel=PERFORMANCE,
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help=f"Dask scheduler address, tcp://host:8786 [default: a LocalCluster] {env('scheduler')}",
        rich_help_panel=PERFORMANCE,
    ),
]
DaskWorkers = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=256,
        metavar="N",
        help=f"LocalCluster worker processes [default: cores] {env('dask_workers')}",
        rich_help_panel=PERFORMANCE,
    ),
]
RangeClaims = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help=f"claims per range, the unit of work [default: 100000] {env('range_claims')}",
        rich_help_panel=PERFORMANCE,
    ),
]
LoadChunkClaims = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help=f"claims per warehouse transaction [default: 20000] {env('load_chunk_claims')}",
        rich_help_panel=PERFORMANCE,
    ),
]
LoadConnections = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=32,
        metavar="N",
        help=f"warehouse sessions writing at once [default: 1] {env('load_connections')}",
        rich_help_panel=PERFORMANCE,
    ),
]
OdbcParameterSets = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help=f"rows per ODBC round trip [default: 10000] {env('odbc_parameter_sets')}",
        rich_help_panel=PERFORMANCE,
    ),
]

# Monitoring and logs.
MetricsTextfile = Annotated[
    str | None,
    typer.Option(
        metavar="FILE",
        help=f"Prometheus textfile to write after the run {env('metrics_textfile')}",
        show_default=False,
        rich_help_panel=MONITORING,
    ),
]
FailOnAlert = Annotated[
    bool,
    typer.Option(
        "--fail-on-alert",
        help="exit 3 when the run succeeded but an alert fired (docs/spec.md §9)",
        rich_help_panel=MONITORING,
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="debug logging", rich_help_panel=MONITORING)]
LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        click_type=click.Choice(["auto", "json", "console"]),
        metavar="FORMAT",
        help="log lines on stderr: json, console, or auto: console on a terminal, else JSON "
        f"{env('log_format')}; default: auto",
        show_default=False,
        rich_help_panel=MONITORING,
    ),
]

# Configuration: where the other settings come from (also accepted before any command).
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help=f"TOML config file: its top-level settings, a [profiles.NAME] table over them {env('config')}; "
        "default: ./claims-etl.toml when there is one",
        show_default=False,
        rich_help_panel=CONFIGURATION,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help=f"the config file's [profiles.NAME] to use {env('profile')}",
        show_default=False,
        rich_help_panel=CONFIGURATION,
    ),
]
SecretsDir = Annotated[
    Path | None,
    typer.Option(
        "--secrets-dir",
        metavar="DIR",
        help=f"a directory holding one file per secret setting, named by it (source_url, ...) {env('secrets_dir')}",
        show_default=False,
        rich_help_panel=CONFIGURATION,
    ),
]

# Advanced: rarely set by hand. (`--no-monitoring` is here, not under monitoring, for its width too: its
# second name takes a column of its own, which left too little room for the longest variable names.)
RunDate = Annotated[
    datetime | None,
    typer.Option(
        formats=["%Y-%m-%d"],
        metavar="DATE",
        help=f"the run's today (V09), YYYY-MM-DD [default: today] {env('run_date')}",
        rich_help_panel=ADVANCED,
    ),
]
TargetDialect = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help=f"mssql, postgresql or mysql, for a DSN that hides its driver {env('target_dialect')}",
        rich_help_panel=ADVANCED,
    ),
]
Monitoring = Annotated[
    bool | None,
    typer.Option(
        "--monitoring/--no-monitoring",
        help=f"progress, resource sampling, run log and alerts [default: on] {env('monitoring')}",
        show_default=False,
        rich_help_panel=ADVANCED,
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help=f"Redis for the reference cache [default: in-process only] {env_or_file('redis_url')}",
        show_default=False,
        rich_help_panel=ADVANCED,
    ),
]
