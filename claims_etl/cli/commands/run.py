"""`claims-etl run`: process pending claims end to end, or count them (`--dry-run`).

Only what the run needs before its first statement is imported before it; the engine after the
settings are read (docs/performance.md, cold start)."""

from __future__ import annotations

import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.errors import AlertError, RecordNotWrittenError

if TYPE_CHECKING:
    from claims_etl.engine.outcomes import RunResult
    from claims_etl.settings import Settings

# The run's flags that say how to run or report, not what: every other parameter is a setting.
_NOT_SETTINGS = ("dry_run", "as_json", "results", "fail_on_alert", "verbose")


def run_command(
    source_url: opt.SourceUrl = None,
    target_odbc: opt.TargetOdbc = None,
    target_url: opt.TargetUrl = None,
    limit: opt.Limit = None,
    batch_id: opt.BatchId = None,
    dry_run: opt.DryRun = False,
    as_json: opt.RunJson = False,
    results: opt.Results = None,
    rules: opt.RulesFile = None,
    skip_unpriceable: opt.SkipUnpriceable = None,
    partitions: opt.Partitions = None,
    engine: opt.Engine = None,
    scheduler: opt.Scheduler = None,
    dask_workers: opt.DaskWorkers = None,
    range_claims: opt.RangeClaims = None,
    load_chunk_claims: opt.LoadChunkClaims = None,
    load_connections: opt.LoadConnections = None,
    odbc_parameter_sets: opt.OdbcParameterSets = None,
    metrics_textfile: opt.MetricsTextfile = None,
    fail_on_alert: opt.FailOnAlert = False,
    verbose: opt.Verbose = False,
    log_format: opt.LogFormat = None,
    config: opt.ConfigFile = None,
    profile: opt.Profile = None,
    secrets_dir: opt.SecretsDir = None,
    run_date: opt.RunDate = None,
    target_dialect: opt.TargetDialect = None,
    monitoring: opt.Monitoring = None,
    redis_url: opt.RedisUrl = None,
) -> None:
    """Process pending claims end to end: extract, validate, price, load, mark (--dry-run: count only)."""
    flags = dict(locals())
    invocation.configure_logging(verbose, log_format)
    settings = invocation.settings(**_settings_flags(flags))
    invocation.configure_logging(verbose, settings.log_format)
    if dry_run:
        _dry_run(settings, as_json=as_json)
        return
    results_file = _ResultsFile.checked(results)  # before the run: an unwritable file is bad usage, exit 2
    result = _run(settings, bars=not as_json, results_file=results_file)
    _print_summary(_record(result) if as_json else result.as_dict(), as_json=as_json)
    alerted = None
    if fail_on_alert and result.alerts:
        fired = ", ".join(alert.name for alert in result.alerts)
        alerted = AlertError(f"run {result.run_id} succeeded, but alerts fired (--fail-on-alert): {fired}")
    if results_file is not None and results_file.unwritten is not None:  # exit 4 outranks 3: the record is missing
        if alerted is not None:
            invocation.say(alerted)
        invocation.fail(results_file.unwritten)
    if alerted is not None:
        invocation.fail(alerted)


@dataclass
class _ResultsFile:
    """The `--results` file, written once the run ended whatever its outcome (the run's `on_finish`).
    Writing it can still fail then (the disk full, its directory removed or made read-only during the
    run): that is kept in `unwritten` and said after the run's own outcome, never as a traceback that
    would hide it."""

    path: Path
    unwritten: RecordNotWrittenError | None = None

    @classmethod
    def checked(cls, path: Path | None) -> _ResultsFile | None:
        if path is None:
            return None
        from claims_etl.ops import run_record  # cold start (module docstring)

        with invocation.one_line_errors():
            run_record.check_writable(path)
        return cls(path)

    def __call__(self, result: RunResult) -> None:
        from claims_etl.ops import run_record  # cold start (module docstring)

        try:
            run_record.write(self.path, _record(result))  # atomic: no half-written file is left
        except OSError as error:
            # Nor an earlier run's record, which a scheduler would read as this run's.
            with suppress(OSError):
                self.path.unlink(missing_ok=True)
            why = error.strerror or type(error).__name__
            self.unwritten = RecordNotWrittenError(
                f"--results {self.path}: the run record could not be written ({why}); the run "
                f"{result.run_id} itself finished with outcome {result.outcome} and its warehouse rows "
                f"are committed (claims-etl report {result.run_id} shows its record)"
            )
            self.unwritten.run_id = result.run_id


def _settings_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The run's flags as Settings arguments: by their setting's name, the run date a date, an absent
    `--skip-unpriceable` not given (the variable or the file may set it)."""
    given = {opt.OPTION_SETTINGS.get(name, name): value for name, value in flags.items() if name not in _NOT_SETTINGS}
    given["run_date"] = given["run_date"].date() if given["run_date"] else None
    given["skip_unpriceable"] = given["skip_unpriceable"] or None
    return given


def _dry_run(settings: Settings, *, as_json: bool) -> None:
    from claims_etl.cli import render  # cold start (module docstring)
    from claims_etl.engine import dry_run as dry_running

    with invocation.one_line_errors(*invocation.secrets(settings)):
        counted = dry_running.dry_run(settings).as_dict()
    if as_json:
        invocation.print_json(counted)
    else:
        invocation.out().print(render.dry_run_summary(counted))


def _record(result: RunResult) -> dict[str, Any]:
    """The run record (claims_etl/ops/run_record.py) of this invocation's run."""
    import claims_etl  # the version, read without importing the engine
    from claims_etl.ops import run_record

    return run_record.record(result.as_dict(), result.started_at, sys.argv[1:], claims_etl.__version__)


def _run(settings: Settings, *, bars: bool, results_file: _ResultsFile | None = None) -> RunResult:
    """The run, with progress bars on a terminal; SIGINT and SIGTERM stop it at its next chunk boundary
    (engine/stopping.py): exit 130 or 143. A run that did not succeed keeps its exit code when its
    `--results` file could not be written: that line follows the run's own."""
    from claims_etl.cli.bars import StageBars  # cold start (module docstring)
    from claims_etl.engine import stopping
    from claims_etl.engine.run import run
    from claims_etl.ops import logs

    err = invocation.err()
    show_bars = bars and err.is_terminal and logs.current_format() == "console"
    try:
        with (
            invocation.one_line_errors(*invocation.secrets(settings)),
            stopping.on_signals(),
            StageBars(err, enabled=show_bars) as stage_bars,
        ):
            return run(settings, listeners=[stage_bars.update], on_finish=results_file)
    except typer.Exit as ended:
        if results_file is not None and results_file.unwritten is not None:
            results_file.unwritten.exit_code = ended.exit_code
            invocation.say(results_file.unwritten, *invocation.secrets(settings))
        raise
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the context manager may swallow)


def _print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    from claims_etl.cli import render  # cold start (module docstring)

    if as_json:
        invocation.print_json(summary)
    else:
        invocation.out().print(render.run_summary(summary))
