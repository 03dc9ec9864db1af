"""Command-line options bound to Settings fields. Each names its `CLAIMS_ETL_*` variable in its help, and
typer never reads that variable itself (only claims_etl/settings.py reads the environment), so a flag
beats the variable, which beats the config file, which beats the default (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

# An option whose parameter name is not its setting's name.
OPTION_SETTINGS = {"rules": "rules_file"}


def env(name: str) -> str:
    """The help suffix naming a setting's variable."""
    return f"[env CLAIMS_ETL_{name.upper()}]"


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=f"TOML config file: its top-level settings, a [profiles.NAME] table over them {env('config')}; "
        "default: ./claims-etl.toml when there is one",
        show_default=False,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", help=f"the config file's [profiles.NAME] to use {env('profile')}", show_default=False),
]
SecretsDir = Annotated[
    Path | None,
    typer.Option(
        "--secrets-dir",
        help=f"a directory holding one file per secret setting, named by it (source_url, ...) {env('secrets_dir')}",
        show_default=False,
    ),
]
BatchId = Annotated[str | None, typer.Option(help=f"only this submission batch {env('batch_id')}", show_default=False)]
Limit = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="at most N claims in all, counted when leased: first those of dead runs' ranges taken over "
        "(in claim_id order, whole while they fit, the first that does not cut after the claims that do, "
        f"the rest left for a later run), then new pending claims up to N {env('limit')}",
        show_default=False,
    ),
]
Partitions = Annotated[
    int | None,
    typer.Option(min=1, max=64, help=f"parallel extract partitions [default: cores] {env('partitions')}"),
]
Engine = Annotated[
    str | None,
    typer.Option(help=f"local (this process) or dask (one task per claim range) [default: local] {env('engine')}"),
]
Scheduler = Annotated[
    str | None,
    typer.Option(help=f"Dask scheduler address, tcp://host:8786 [default: a LocalCluster] {env('scheduler')}"),
]
DaskWorkers = Annotated[
    int | None,
    typer.Option(min=1, max=256, help=f"LocalCluster worker processes [default: cores] {env('dask_workers')}"),
]
RangeClaims = Annotated[
    int | None,
    typer.Option(min=1, help=f"claims per range, the unit of work [default: 100000] {env('range_claims')}"),
]
LoadChunkClaims = Annotated[
    int | None,
    typer.Option(min=1, help=f"claims per warehouse transaction [default: 20000] {env('load_chunk_claims')}"),
]
LoadConnections = Annotated[
    int | None,
    typer.Option(min=1, max=32, help=f"warehouse sessions writing at once [default: 1] {env('load_connections')}"),
]
OdbcParameterSets = Annotated[
    int | None,
    typer.Option(min=1, help=f"rows per ODBC round trip [default: 10000] {env('odbc_parameter_sets')}"),
]
RunDate = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help=f"the run's today (V09) [default: today] {env('run_date')}"),
]
TargetDialect = Annotated[
    str | None,
    typer.Option(help=f"mssql, postgresql or mysql, for a DSN that hides its driver {env('target_dialect')}"),
]
RedisUrl = Annotated[
    str | None,
    typer.Option(
        help="Redis for the reference cache [default: in-process only] "
        "[env CLAIMS_ETL_REDIS_URL, or a file: CLAIMS_ETL_REDIS_URL_FILE]",
        show_default=False,
    ),
]
MetricsTextfile = Annotated[
    str | None,
    typer.Option(help=f"Prometheus textfile to write after the run {env('metrics_textfile')}", show_default=False),
]
Monitoring = Annotated[
    bool | None,
    typer.Option(
        "--monitoring/--no-monitoring",
        help=f"progress, resource sampling, run log and alerts [default: on] {env('monitoring')}",
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
FailOnAlert = Annotated[
    bool, typer.Option("--fail-on-alert", help="exit 3 when the run succeeded but an alert fired (docs/spec.md §9)")
]
