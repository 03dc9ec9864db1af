"""`claims-etl` command line (typer + rich). Every command builds the one Settings object from the
environment (`CLAIMS_ETL_*`) and its flags, and turns a known error into one line and an exit code."""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from claims_etl.cli import render
from claims_etl.db import connections
from claims_etl.dev import seed as seeding
from claims_etl.engine import pipeline
from claims_etl.errors import ClaimsEtlError, ConfigurationError, scrub
from claims_etl.ops import progress_log
from claims_etl.reference import store
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
    """A known error becomes one scrubbed line on stderr and its exit code (docs/spec.md §6)."""
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
        connections.init_source(settings)
        dialect = connections.init_target(settings)
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
        rvu_rows, gpci_rows = store.load_year(settings, rvu, gpci, year)
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


@app.command("run")
def run_command(
    batch_id: Annotated[str | None, typer.Option(help="only this submission batch")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most N claims")] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, max=64, help="parallel extract partitions [default: cores]")
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="local (this process) or dask (one task per claim range) [default: local]")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, tcp://host:8786 [default: a LocalCluster]")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
    source_url: SourceUrl = None,
    target_odbc: TargetOdbc = None,
) -> None:
    """Process pending claims end to end: extract, validate, price, load, mark."""
    _logging(verbose)
    settings = _guarded(
        lambda: _settings(
            batch_id=batch_id,
            limit=limit,
            partitions=partitions,
            engine=engine,
            scheduler=scheduler,
            source_url=source_url,
            target_odbc=target_odbc,
        )
    )
    show_bars = not as_json and err.is_terminal
    with _one_line_errors(*_secrets(settings)), render.StageBars(err, enabled=show_bars) as bars:
        result = pipeline.run(settings, listeners=[bars.update])
    summary = result.as_dict()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(render.run_summary(summary))


@app.command("report")
def report_command(
    run_id: Annotated[str | None, typer.Argument(help="a run id [default: the latest run]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    source_url: SourceUrl = None,
) -> None:
    """A finished run's stage timings, throughput, rejections by rule, cache, resources and alerts."""
    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        found = progress_log.recent(settings, limit=1, run_id=run_id)
        if not found:
            raise ConfigurationError(f"no run {run_id!r} recorded" if run_id else "no runs recorded yet")
    if as_json:
        out.print_json(json.dumps(found[0], default=str))
    else:
        out.print(render.run_summary(found[0]))


@app.command("dashboard")
def dashboard_command(
    interval: Annotated[float, typer.Option(min=0.1, help="refresh every S seconds")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100, help="recent runs to list")] = 10,
    source_url: SourceUrl = None,
) -> None:
    """Live view: runs in progress with their stages, and the last runs. Ctrl-C to leave."""
    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        if once:
            out.print(render.dashboard(progress_log.recent(settings, limit=runs)))
            return
        with Live(render.dashboard(progress_log.recent(settings, limit=runs)), console=out, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(render.dashboard(progress_log.recent(settings, limit=runs)))
            except KeyboardInterrupt:
                return


@app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="CSV file to write")],
    runs: Annotated[int, typer.Option(min=1, help="the last N runs")] = 100,
    source_url: SourceUrl = None,
) -> None:
    """Stage timings and run metrics of recent runs as CSV (one row per run and value)."""
    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        rows = render.export_rows(progress_log.recent(settings, limit=runs))
        try:
            with file.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=render.EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        except OSError as error:
            raise ConfigurationError(f"cannot write {file}: {error.strerror}") from None
    out.print(f"wrote {len(rows)} rows to {file}")


def _logging(verbose: bool) -> None:
    """key=value log lines on stderr; messages never carry claim data (only counts and ids of runs)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format='ts=%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"',
    )
