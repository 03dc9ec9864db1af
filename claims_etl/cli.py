"""`claims-etl` command line (typer + rich). Every command builds the one Settings object from the
environment (`CLAIMS_ETL_*`) and its flags, and turns a known error into one line and an exit code."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from claims_etl import db, pipeline, reference
from claims_etl import seed as seeding
from claims_etl.errors import ClaimsEtlError, ConfigurationError, scrub
from claims_etl.settings import Settings

# No rich tracebacks with locals: they would print claim rows (PHI) and connection strings.
app = typer.Typer(
    help="Columnar ETL for professional medical claims.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
reference_app = typer.Typer(help="CMS fee schedule reference data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(reference_app, name="reference")
err = Console(stderr=True)
out = Console()

SourceUrl = Annotated[
    str | None,
    typer.Option("--source-url", help="PostgreSQL URL [env CLAIMS_ETL_SOURCE_URL]", show_default=False),
]
TargetOdbc = Annotated[
    str | None,
    typer.Option("--target-odbc", help="ODBC connection string [env CLAIMS_ETL_TARGET_ODBC]", show_default=False),
]


def _settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"bad configuration: {problems}") from None


@contextmanager
def _one_line_errors(*secrets: str) -> Iterator[None]:
    """A known error becomes one scrubbed line on stderr and its exit code (CONTRACT 6)."""
    try:
        yield
    except ClaimsEtlError as error:
        one_line = " ".join(scrub(str(error), *secrets).split())  # driver messages span lines
        err.print(f"[red]error:[/red] {escape(one_line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None


def _guarded(build: Callable[[], Settings]) -> Settings:
    with _one_line_errors():
        return build()
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the context manager may swallow)


def _secrets(settings: Settings) -> tuple[str, ...]:
    return (settings.source_url.get_secret_value(), settings.target_odbc.get_secret_value())


@db_app.command("init")
def db_init(source_url: SourceUrl = None, target_odbc: TargetOdbc = None) -> None:
    """Create the staging, reference and warehouse tables where missing."""
    settings = _guarded(lambda: _settings(source_url=source_url, target_odbc=target_odbc))
    with _one_line_errors(*_secrets(settings)):
        db.init_source(settings)
        dialect = db.init_target(settings)
    out.print(f"staging and reference tables ready; warehouse tables ready ({dialect})")


@reference_app.command("load")
def reference_load(
    rvu: Annotated[Path, typer.Option(help="CMS PPRRVU CSV")],
    gpci: Annotated[Path, typer.Option(help="CMS GPCI CSV")],
    year: Annotated[int, typer.Option(min=1992, max=2100, help="fee schedule year")],
    source_url: SourceUrl = None,
) -> None:
    """Load CMS RVU and GPCI files for a year (replaces that year atomically)."""
    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        rvu_rows, gpci_rows = reference.load_year(settings, rvu, gpci, year)
    out.print(f"loaded {year}: {rvu_rows} RVU rows, {gpci_rows} GPCI rows")


@app.command("seed")
def seed_command(
    claims: Annotated[int, typer.Option(min=0, help="pending claims to add")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 42,
    invalid_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of invalid claims")] = 0.05,
    source_url: SourceUrl = None,
) -> None:
    """Write synthetic CMS-layout reference files, load them, and add N pending claims."""
    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        result = seeding.seed(settings, claims, seed=seed, invalid_rate=invalid_rate)
    out.print(
        f"seeded {result.claims} claims ({result.lines} lines, {result.invalid} invalid) "
        f"from claim_id {result.first_claim_id}"
    )


def _stage_table(result: pipeline.RunResult) -> Table:
    table = Table(title=f"run {result.run_id}: {result.status}")
    for column in ("stage", "seconds", "rows in", "rows out", "rows/s", "peak RSS MiB"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in result.stages:
        table.add_row(
            stage.stage,
            f"{stage.seconds:.3f}",
            f"{stage.rows_in:,}",
            f"{stage.rows_out:,}",
            f"{stage.rows_per_second:,.0f}",
            f"{stage.peak_rss_bytes / 2**20:,.0f}",
        )
    table.add_section()
    table.add_row(
        "total",
        f"{result.seconds:.3f}",
        f"{result.claims_read:,}",
        "",
        f"{result.claims_per_second:,.0f}",
        "",
    )
    table.caption = (
        f"{result.claims_read:,} claims read, {result.claims_priced:,} priced, {result.claims_rejected:,} rejected"
        f", {result.claims_recovered:,} recovered from dead runs; {result.claims_per_second:,.0f} claims/s"
    )
    return table


@app.command("run")
def run_command(
    batch_id: Annotated[str | None, typer.Option(help="only this submission batch")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most N claims")] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, max=64, help="parallel extract partitions [default: cores]")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
    source_url: SourceUrl = None,
    target_odbc: TargetOdbc = None,
) -> None:
    """Process pending claims end to end: extract, validate, price, load, mark."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _guarded(
        lambda: _settings(
            batch_id=batch_id,
            limit=limit,
            partitions=partitions,
            source_url=source_url,
            target_odbc=target_odbc,
        )
    )
    with _one_line_errors(*_secrets(settings)):
        result = pipeline.run(settings)
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        out.print(_stage_table(result))
