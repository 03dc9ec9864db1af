"""`claims-etl` command line (typer + rich). Every command builds the one Settings object from the
environment (`CLAIMS_ETL_*`) and its flags, and turns a known error into one line and an exit code."""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import pydantic
import typer
from rich.console import Console
from rich.markup import escape

from claims_etl.cli import config_cmd
from claims_etl.cli import options as opt
from claims_etl.errors import (
    AlertError,
    ClaimsEtlError,
    ConfigurationError,
    RunInterruptedError,
    StageError,
    carries_password,
    scrub,
)
from claims_etl.ops import logs
from claims_etl.settings import Settings

# The commands import what they work with when they run, not here: `--help`, `--version` and `config
# show` then start without Polars, Arrow or the drivers (docs/performance.md, cold start).
if TYPE_CHECKING:
    from claims_etl.reference import store

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
rules_app = typer.Typer(help="Validation rules and the payer's rules file.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
err = Console(stderr=True)
out = Console()

SourceUrl = Annotated[
    str | None,
    typer.Option(
        "--source-url",
        help="PostgreSQL URL [env CLAIMS_ETL_SOURCE_URL, or a file: CLAIMS_ETL_SOURCE_URL_FILE]",
        show_default=False,
    ),
]
TargetOdbc = Annotated[
    str | None,
    typer.Option(
        "--target-odbc",
        help="ODBC connection string [env CLAIMS_ETL_TARGET_ODBC, or a file: CLAIMS_ETL_TARGET_ODBC_FILE]",
        show_default=False,
    ),
]
TargetUrl = Annotated[
    str | None,
    typer.Option(
        "--target-url",
        help="a PostgreSQL warehouse's URL, loaded by COPY; set, it is used instead of the ODBC string "
        "[env CLAIMS_ETL_TARGET_URL, or a file: CLAIMS_ETL_TARGET_URL_FILE]",
        show_default=False,
    ),
]
RulesFile = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="the payer's rules file (TOML, docs/spec.md §5.1) [env CLAIMS_ETL_RULES_FILE; default: V01-V17]",
        show_default=False,
    ),
]
LogFormatFlag = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        click_type=click.Choice(["auto", "json", "console"]),
        help="log lines on stderr: json, console, or auto: console on a terminal, else JSON "
        "[env CLAIMS_ETL_LOG_FORMAT; default: auto]",
        show_default=False,
    ),
]


# Flags whose value may hold a password, and the variable that is the safer way to give it.
_SECRET_FLAGS = {
    "source_url": ("--source-url", "CLAIMS_ETL_SOURCE_URL"),
    "target_odbc": ("--target-odbc", "CLAIMS_ETL_TARGET_ODBC"),
    "target_url": ("--target-url", "CLAIMS_ETL_TARGET_URL"),
    "redis_url": ("--redis-url", "CLAIMS_ETL_REDIS_URL"),
}


def _settings(**flags: Any) -> Settings:
    """Settings from the flags that were given (the shared ones before the command too), else the
    environment, a secret's file, the config file. A flag that carries a password (which any user can
    read in the process list) gets one warning line, without it; so does a password in the config file."""
    given = config_cmd.arguments(**flags)
    for name, (flag, variable) in _SECRET_FLAGS.items():
        if name in given and carries_password(given[name]):
            _warning(
                f"{flag} carries a password, which other users can read in the process "
                f"list; give it in {variable} or in a file named by {variable}_FILE instead"
            )
    try:
        settings = Settings(**given)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"bad configuration: {problems}") from None
    in_file = config_cmd.file_passwords(settings, given)
    if in_file:
        _warning(
            f"{', '.join(in_file)} in {settings.config} carries a password: keep the file "
            "readable by the ETL's user only, or move it to a CLAIMS_ETL_*_FILE or the secrets directory"
        )
    return settings


@contextmanager
def _one_line_errors(*secrets: str) -> Iterator[None]:
    """A known error becomes one scrubbed line on stderr and its exit code (docs/spec.md §6)."""
    try:
        yield
    except ClaimsEtlError as error:
        one_line = " ".join(scrub(str(error), *secrets).split())  # driver messages span lines
        if logs.current_format() == "json":  # a log stack's failure line: run id, stage, error class, exit code
            logs.failed(error, one_line)
        elif isinstance(error, RunInterruptedError):
            run = f"run {error.run_id} " if error.run_id else ""
            err.print(f"[yellow]interrupted:[/yellow] {escape(run + one_line)}", highlight=False, soft_wrap=True)
        else:
            err.print(f"[red]error:[/red] {escape(one_line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None


def _warning(text: str) -> None:
    """A warning line: a log line in the JSON format (every stderr line one JSON object), else `warning: ...`."""
    if logs.current_format() == "json":
        logs.log.warning(text)
    else:
        err.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


def _guarded(build: Callable[[], Settings]) -> Settings:
    with _one_line_errors():
        return build()
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the context manager may swallow)


config_cmd.register(app, _settings, _one_line_errors, out)  # --config, --profile, --secrets-dir, --version; config show


def _secrets(settings: Settings) -> tuple[str, ...]:
    return settings.connection_strings()


@db_app.command("init")
def db_init(source_url: SourceUrl = None, target_odbc: TargetOdbc = None, target_url: TargetUrl = None) -> None:
    """Create the staging, reference and warehouse tables where missing."""
    from claims_etl import targets
    from claims_etl.db import source

    settings = _guarded(lambda: _settings(source_url=source_url, target_odbc=target_odbc, target_url=target_url))
    with _one_line_errors(*_secrets(settings)):
        source.init_source(settings)
        dialect = targets.init_target(settings)
    out.print(f"staging and reference tables ready; warehouse tables ready ({dialect})")


@reference_app.command("load")
def reference_load(
    year: Annotated[int, typer.Option(min=1992, max=2100, help="service year the release prices")],
    rvu: Annotated[Path | None, typer.Option(help="CMS PPRRVU CSV (non-QP)")] = None,
    rvu_zip: Annotated[
        Path | None, typer.Option(help="CMS RVU zip (e.g. RVU26B.zip): its PPRRVU and GPCI CSVs")
    ] = None,
    choose: Annotated[str | None, typer.Option(help="the non-QP PPRRVU member of a zip holding several")] = None,
    gpci: Annotated[
        Path | None,
        typer.Option(
            help="CMS GPCI CSV [default: the zip's, else the release before's]; alone (no --rvu/--rvu-zip, with "
            "--release and --effective): a GPCI-only release, RVUs from the release before"
        ),
    ] = None,
    work_gpci: Annotated[
        str | None,
        typer.Option(
            click_type=click.Choice(["floor", "no-floor"]),
            help="the GPCI file's work GPCI where it has two: with or without the 1.0 floor (2026)",
            show_default=False,
        ),
    ] = None,
    release: Annotated[
        str | None, typer.Option(help="release label, e.g. 2026B [default: from the file's banner or name]")
    ] = None,
    effective: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="in force from [default: the release's quarter, from the file]"),
    ] = None,
    qp_cf: Annotated[str | None, typer.Option(help="QP conversion factor [default: the zip's QP PPRRVU file]")] = None,
    source_url: SourceUrl = None,
) -> None:
    """Load a CMS fee schedule release (replaces that release atomically; refused whole if any file is bad)."""
    from claims_etl.reference import store

    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)), tempfile.TemporaryDirectory(prefix="claims-etl-rvu-") as unpacked:
        files = _release_files(rvu, rvu_zip, choose, gpci, Path(unpacked))
        loaded = store.load_release(
            settings,
            files,
            year=year,
            release=release,
            effective=effective.date() if effective else None,
            qp_cf=_decimal("--qp-cf", qp_cf),
            work_gpci="floor" if work_gpci == "floor" else "no-floor" if work_gpci else None,
        )
    if loaded.inferred is not None:
        named = [f"release {loaded.release}"] if release is None else []
        named += [f"in force from {loaded.effective_from}"] if effective is None else []
        out.print(
            f"{', '.join(named)}: inferred from {loaded.inferred.source} (--release/--effective override)",
            highlight=False,
        )
    qp = f", QP conversion factor {loaded.qp_conv_factor}" if loaded.qp_conv_factor is not None else ""
    work = f", work GPCI {loaded.work_gpci}" if loaded.work_gpci else ""
    out.print(
        f"loaded release {loaded.release} ({loaded.year}, in force from {loaded.effective_from}): "
        f"{loaded.rvu_rows} RVU rows ({loaded.rvu_from}), {loaded.gpci_rows} GPCI rows ({loaded.gpci_from}{work}){qp}"
    )


def _release_files(
    rvu: Path | None, rvu_zip: Path | None, choose: str | None, gpci: Path | None, unpacked: Path
) -> store.ReleaseFiles:
    """The release's files from `--rvu` or `--rvu-zip` (at most one), `--gpci` winning over the zip's;
    `--gpci` alone is a GPCI-only release."""
    from claims_etl.reference import cms_zip, store

    if rvu is not None and rvu_zip is not None:
        raise ConfigurationError("give the PPRRVU file as one of --rvu FILE or --rvu-zip ZIP, not both")
    if rvu_zip is not None:
        found = cms_zip.rvu_files_in_zip(rvu_zip, unpacked, choose)
        return store.ReleaseFiles(rvu=found.non_qp, qp_rvu=found.qp, gpci=gpci or found.gpci, zip_name=rvu_zip.name)
    if rvu is None and gpci is None:
        raise ConfigurationError(
            "give the PPRRVU file as --rvu FILE or --rvu-zip ZIP, or a GPCI-only release as --gpci FILE "
            "with --release and --effective"
        )
    return store.ReleaseFiles(rvu=rvu, gpci=gpci)


def _decimal(flag: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConfigurationError(f"{flag} {text!r} is not a number") from None


@reference_app.command("load-qp")
def reference_load_qp(
    file: Annotated[Path, typer.Option(help="CSV with the header npi, one NPI a line")],
    year: Annotated[int, typer.Option(min=1992, max=2100, help="service year the list applies to")],
    source_url: SourceUrl = None,
) -> None:
    """Load the NPIs priced with the QP conversion factor for a year (replaces that year's list)."""
    from claims_etl.reference import store

    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        npis = store.load_qp_list(settings, file, year)
    out.print(f"loaded the {year} QP list: {npis} NPIs")


@reference_app.command("list")
def reference_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
    source_url: SourceUrl = None,
) -> None:
    """The loaded releases: label, year, effective date, files and their sha256, row counts."""
    from claims_etl.cli import render
    from claims_etl.reference import store

    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        releases = store.list_releases(settings)
    if as_json:
        out.print_json(json.dumps(releases, default=str))
    else:
        out.print(render.releases_table(releases))


@app.command("seed")
def seed_command(
    claims: Annotated[int, typer.Option(min=0, help="pending claims to add")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 42,
    invalid_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of invalid claims")] = 0.05,
    source_url: SourceUrl = None,
) -> None:
    """Write synthetic CMS-layout reference files, load them, and add N pending claims."""
    from claims_etl.dev import seed as seeding

    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        result = seeding.seed(settings, claims, seed=seed, invalid_rate=invalid_rate)
    out.print(
        f"seeded {result.claims} claims ({result.lines} lines, {result.invalid} invalid) "
        f"from claim_id {result.first_claim_id}"
    )


@app.command("run")
def run_command(
    batch_id: opt.BatchId = None,
    limit: opt.Limit = None,
    partitions: opt.Partitions = None,
    engine: opt.Engine = None,
    scheduler: opt.Scheduler = None,
    dry_run: opt.DryRun = False,
    fail_on_alert: opt.FailOnAlert = False,
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
    dask_workers: opt.DaskWorkers = None,
    range_claims: opt.RangeClaims = None,
    load_chunk_claims: opt.LoadChunkClaims = None,
    load_connections: opt.LoadConnections = None,
    odbc_parameter_sets: opt.OdbcParameterSets = None,
    run_date: opt.RunDate = None,
    target_dialect: opt.TargetDialect = None,
    redis_url: opt.RedisUrl = None,
    metrics_textfile: opt.MetricsTextfile = None,
    monitoring: opt.Monitoring = None,
    skip_unpriceable: Annotated[
        bool | None,
        typer.Option(
            "--skip-unpriceable",
            help="leave claims no loaded fee schedule release prices pending, instead of exit 2 "
            "[env CLAIMS_ETL_SKIP_UNPRICEABLE]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
    log_format: LogFormatFlag = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
    rules: RulesFile = None,
    source_url: SourceUrl = None,
    target_odbc: TargetOdbc = None,
    target_url: TargetUrl = None,
) -> None:
    """Process pending claims end to end: extract, validate, price, load, mark (--dry-run: count only)."""
    # Only what the run needs before its first statement; the rest after it (docs/performance.md, cold start).
    from claims_etl.cli.bars import StageBars
    from claims_etl.engine import stopping
    from claims_etl.engine.run import run

    _logging(verbose, log_format)
    settings = _guarded(
        lambda: _settings(
            rules_file=rules,
            batch_id=batch_id,
            limit=limit,
            partitions=partitions,
            engine=engine,
            scheduler=scheduler,
            config=config,
            profile=profile,
            secrets_dir=secrets_dir,
            dask_workers=dask_workers,
            range_claims=range_claims,
            load_chunk_claims=load_chunk_claims,
            load_connections=load_connections,
            odbc_parameter_sets=odbc_parameter_sets,
            run_date=run_date.date() if run_date else None,
            target_dialect=target_dialect,
            redis_url=redis_url,
            metrics_textfile=metrics_textfile,
            monitoring=monitoring,
            skip_unpriceable=skip_unpriceable or None,
            source_url=source_url,
            target_odbc=target_odbc,
            target_url=target_url,
            log_format=log_format,
        )
    )
    _logging(verbose, settings.log_format)
    if dry_run:
        from claims_etl.cli import render
        from claims_etl.engine import dry_run as dry_running

        with _one_line_errors(*_secrets(settings)):
            counted = dry_running.dry_run(settings).as_dict()
        if as_json:
            out.print_json(json.dumps(counted))
        else:
            out.print(render.dry_run_summary(counted))
        return
    show_bars = not as_json and err.is_terminal and logs.current_format() == "console"
    # SIGINT and SIGTERM stop the run at its next chunk boundary (engine/stopping.py): exit 130 or 143.
    with _one_line_errors(*_secrets(settings)), stopping.on_signals(), StageBars(err, enabled=show_bars) as bars:
        result = run(settings, listeners=[bars.update])
    from claims_etl.cli import render

    summary = result.as_dict()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        out.print(render.run_summary(summary))
    if fail_on_alert and result.alerts:
        with _one_line_errors():
            fired = ", ".join(alert.name for alert in result.alerts)
            raise AlertError(f"run {result.run_id} succeeded, but alerts fired (--fail-on-alert): {fired}")


@rules_app.command("list")
def rules_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
    rules: RulesFile = None,
) -> None:
    """Every rule as the rules file sets it: id, level, severity, enabled, parameters, description."""
    from claims_etl.cli import render
    from claims_etl.stages.rules import rule_table

    settings = _guarded(lambda: _settings(rules_file=rules))
    rule_set = settings.rules()
    table = rule_table(rule_set.config)
    if as_json:
        out.print_json(json.dumps({"rules_file": rule_set.path, "rules_sha256": rule_set.sha256, "rules": table}))
    else:
        out.print(render.rules_table(table, rule_set.sha256))


@app.command("reprice")
def reprice_command(
    release: Annotated[str, typer.Option(help="the revised release, e.g. 2026B (loaded first)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count the claims and dollars that would change")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
    log_format: LogFormatFlag = None,
    source_url: SourceUrl = None,
    target_odbc: TargetOdbc = None,
    target_url: TargetUrl = None,
) -> None:
    """Price processed claims in a release's window again; replace those whose amounts change (history kept)."""
    from claims_etl.engine import reprice as repricing

    _logging(verbose, log_format)
    settings = _guarded(
        lambda: _settings(source_url=source_url, target_odbc=target_odbc, target_url=target_url, log_format=log_format)
    )
    _logging(verbose, settings.log_format)
    with _one_line_errors(*_secrets(settings)):
        result = repricing.reprice(settings, release, dry_run=dry_run)
    summary = result.as_dict()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    would = "would change" if dry_run else "changed"
    out.print(
        f"release {release}: {summary['claims_changed']:,} of {summary['claims_read']:,} claims {would} "
        f"(allowed {summary['allowed_before']} -> {summary['allowed_after']}, {summary['allowed_change']}); "
        f"{summary['claims_not_priceable']:,} no longer priceable, left as they were"
    )


@app.command("explain")
def explain_command(
    claim_id: Annotated[int, typer.Argument(help="the claim's claim_id (any status)", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="the explanation as JSON")] = False,
    rules: RulesFile = None,
    run_date: opt.RunDate = None,
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
    source_url: SourceUrl = None,
) -> None:
    """One claim's price, line by line, as a worked computation (release, RVU and GPCI rows, each step,
    allowed amounts), or the rules a rejected claim broke; validated and priced as a run would now."""
    from claims_etl.cli import explain_view
    from claims_etl.engine import explain

    settings = _guarded(
        lambda: _settings(
            rules_file=rules,
            run_date=run_date.date() if run_date else None,
            config=config,
            profile=profile,
            secrets_dir=secrets_dir,
            source_url=source_url,
        )
    )
    with _one_line_errors(*_secrets(settings)):
        found = explain.explain(settings, claim_id)
    if as_json:
        out.print_json(json.dumps(found))
    else:
        out.print(explain_view.explanation(found), highlight=False)
    if not found["consistent"]:  # printed above; the exit code tells a script too
        with _one_line_errors():
            problems = "; ".join(found["inconsistencies"])
            raise StageError("explain", f"claim {claim_id}: the worked computation differs from the engine: {problems}")


@app.command("report")
def report_command(
    run_id: Annotated[str | None, typer.Argument(help="a run id [default: the latest run]")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the report as JSON, the HTML charts' data under `charts`")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="also write the report as one self-contained HTML file", show_default=False),
    ] = None,
    runs: Annotated[
        int, typer.Option(min=1, max=1000, help="runs in the history charts: the last N up to this one")
    ] = 20,
    source_url: SourceUrl = None,
) -> None:
    """A finished run's stage timings, throughput, rejections by rule, cache, resources and alerts."""
    from claims_etl.cli import render
    from claims_etl.ops import html_report, progress_log

    settings = _guarded(lambda: _settings(source_url=source_url))
    with _one_line_errors(*_secrets(settings)):
        found = progress_log.recent(settings, limit=1, run_id=run_id)
        if not found:
            raise ConfigurationError(f"no run {run_id!r} recorded" if run_id else "no runs recorded yet")
        run = found[0]
        charts = html_report.chart_data(run, progress_log.recent(settings, limit=runs, until=run["run_id"]))
        if html is not None:
            html_report.write(html, run, charts)
    if as_json:
        out.print_json(json.dumps(run | {"charts": charts}, default=str))
    elif html is not None:
        out.print(f"wrote the report of run {run['run_id']} to {html}", highlight=False, soft_wrap=True)
    else:
        out.print(render.run_summary(run))


@app.command("dashboard")
def dashboard_command(
    interval: Annotated[float, typer.Option(min=0.1, help="refresh every S seconds")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100, help="recent runs to list")] = 10,
    source_url: SourceUrl = None,
) -> None:
    """Live view: runs in progress with their stages, and the last runs. Ctrl-C to leave."""
    from rich.live import Live

    from claims_etl.cli import render
    from claims_etl.ops import progress_log

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


@app.command("reconcile")
def reconcile_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
    source_url: SourceUrl = None,
    target_odbc: TargetOdbc = None,
    target_url: TargetUrl = None,
) -> None:
    """Source statuses against warehouse rows: counts, and the claim ids that differ. Exit 1 on any difference."""
    from claims_etl.cli import render
    from claims_etl.ops import reconcile as reconciliation

    settings = _guarded(lambda: _settings(source_url=source_url, target_odbc=target_odbc, target_url=target_url))
    with _one_line_errors(*_secrets(settings)):
        found = reconciliation.reconcile(settings)
    report = found.as_dict()
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(render.reconciliation(report))
    if not found.consistent:
        raise typer.Exit(code=1)


@app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="CSV file to write")],
    runs: Annotated[int, typer.Option(min=1, help="the last N runs")] = 100,
    source_url: SourceUrl = None,
) -> None:
    """Stage timings and run metrics of recent runs as CSV (one row per run and value)."""
    from claims_etl.cli import render
    from claims_etl.ops import progress_log

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


def _logging(verbose: bool, log_format: str | None) -> None:
    """Log lines on stderr as JSON or console lines (claims_etl/ops/logs.py); messages never carry
    claim data (only counts and ids of runs, claims and rules). Called with the flag before the
    settings are read (so a bad setting is reported in the format asked for), then with the setting."""
    logs.configure(log_format or Settings.log_format_asked(), verbose=verbose)
