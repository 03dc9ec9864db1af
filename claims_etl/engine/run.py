"""A run, start to end (`claims-etl run`, `claims_etl.run`): its first statement, its etl_runs row, the
stages in order with their timing and progress, and its records.

The run's first statement (its run lock, docs/design.md) goes to the source before the stages' heavy
modules (Polars, Arrow, the warehouse drivers) are imported: `claims-etl run` reaches its database
fast (docs/performance.md, cold start), and the stages' modules load while nothing else is waiting.
So this module's own imports are light, and the functions that run after the first statement import
the stages' modules themselves (each such import says so).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import psycopg

from claims_etl.db.source import lock_run, require_set_up, source_connection
from claims_etl.engine import leases, stopping
from claims_etl.engine.outcomes import Progress, RangeOutcome, RunResult, merged_stages, new_run_id
from claims_etl.errors import ClaimsEtlError, ConfigurationError, RunInterruptedError
from claims_etl.faults import Faults, for_entry
from claims_etl.ops import logs
from claims_etl.ops.alerts import evaluate_alerts
from claims_etl.ops.metrics import ResourceSampler
from claims_etl.ops.progress_log import ProgressLog, baseline, mark_killed
from claims_etl.ops.textfile import metrics_textfile
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.settings import Settings

if TYPE_CHECKING:
    from claims_etl.engine.start_up import StartUp
    from claims_etl.targets import Target

log = logging.getLogger(__name__)


def run(
    settings: Settings,
    listeners: Sequence[Progress] = (),
    *,
    faults: Faults | None = None,
    on_finish: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Process pending claims end to end: lease, reference, extract, validate, price, load.

    `listeners` get (stage, done, total) as the run advances (the CLI's progress bars); progress is
    also published to staging.etl_run_log for `claims-etl dashboard` in another terminal. `faults`:
    fault points for crash tests (claims_etl/faults.py; by default the entry's, none in production).
    `on_finish` gets the result once the run ended, whatever its outcome (the CLI's `--results` file)."""
    started_at, clock = datetime.now(UTC), time.perf_counter()
    faults = for_entry(settings) if faults is None else faults
    # One "today" for V09 across every range and worker, even for a run that crosses midnight.
    settings = settings.model_copy(update={"run_date": settings.effective_run_date()})
    result = RunResult(run_id=new_run_id(started_at), started_at=started_at.timestamp())
    progress_log = ProgressLog(settings, result.run_id, started_at)

    def progress(stage: str, done: int, total: int) -> None:
        progress_log.advance(stage, done, total)
        for listener in listeners:
            listener(stage, done, total)

    with logs.run_context(result.run_id), metrics_textfile(settings, result):
        try:
            with source_connection(settings) as source:
                lock_run(source, result.run_id)  # the run's first statement: alive from here on
                require_set_up(source)  # before any stage: one line saying "run claims-etl db init"
                _work(settings, source, result, progress, progress_log, clock, faults)
        finally:
            _closing_event(result, clock, sys.exc_info()[1], settings.connection_strings())
            progress_log.finish_if_left_running(result.status, result.as_dict())
            progress_log.close()
            if on_finish is not None:
                on_finish(result)
    return result


def _closing_event(result: RunResult, clock: float, error: BaseException | None, secrets: Sequence[str]) -> None:
    """The run's end, whatever its outcome (succeeded, failed, interrupted, or failed before its first
    stage, whose result is completed here: its error and seconds) and its last log line, the totals as
    fields, at info (the JSON log's level; a console shows warnings and the one error line). No claim
    data."""
    if error is not None and result.error is None:  # failed before its first stage (the lock, set-up)
        result.status = "failed"
        result.fail(error, *secrets)
    result.seconds = result.seconds or time.perf_counter() - clock
    fields: dict[str, Any] = {
        "outcome": result.outcome,
        "seconds": round(result.seconds, 3),
        "claims_read": result.claims_read,
        "claims_priced": result.claims_priced,
        "claims_rejected": result.claims_rejected,
        "claims_quarantined": result.claims_quarantined,
        "claims_recovered": result.claims_recovered,
        "alerts": len(result.alerts),
    }
    if error is not None:
        fields["error_class"] = type(error).__name__
    log.info("run finished", extra=fields)


def _work(
    settings: Settings,
    source: psycopg.Connection[Any],
    result: RunResult,
    progress: Progress,
    progress_log: ProgressLog,
    clock: float,
    faults: Faults,
) -> None:
    """The run after its first statement: its etl_runs row, the stages, its records, on the warehouse
    session opened here and the source session (`source`, the run lock held) given. The start-up threads
    (engine/start_up.py) take the leases meanwhile, on sessions of their own, while this thread imports
    the stages' libraries and opens the warehouse; the leases commit when the first stage begins."""
    from claims_etl.engine import start_up  # noqa: PLC0415 (cold start; psycopg only)

    # Before the start-up threads: taking a dead run's leases locks its run-lock key until the lease
    # commits (leases/lease_dead.sql), and the dead run would look alive to this check meanwhile.
    killed = _mark_killed_runs(source, result.run_id)
    with start_up.starting(settings, result.run_id, lambda timer, name: _stage(timer, progress, name)) as starting:
        from claims_etl.ops import run_records  # noqa: PLC0415 (cold start: Polars, Arrow, the drivers)
        from claims_etl.targets import connect_target  # noqa: PLC0415 (cold start: after the first statement)

        target = connect_target(settings)
        try:
            started_at = datetime.fromtimestamp(result.started_at, UTC)
            run_records.record_start(target, result.run_id, started_at, _options(settings))
            with ResourceSampler(enabled=settings.monitoring) as sampler:
                try:
                    timer = StageTimer(records=result.stages)
                    _stages(_Working(settings, source, target, timer, result, progress, faults), starting, killed)
                    result.status = "succeeded"
                except BaseException as error:  # an unexpected error or Ctrl-C fails the run just the same
                    result.status = "failed"
                    result.fail(error, *settings.connection_strings())
                    raise
                finally:
                    result.seconds = time.perf_counter() - clock
                    sampler.stop()
                    _finish(settings, target, result, sampler, progress_log)
        finally:
            target.close()


def _options(settings: Settings) -> dict[str, Any]:
    """What the run was asked to do, for etl_runs.options: never connection strings; the rule
    configuration in force (its file, sha256 and content, docs/spec.md §5.1)."""
    return settings.rules().record() | settings.model_dump(
        include={
            "engine",
            "batch_id",
            "limit",
            "partitions",
            "range_claims",
            "load_chunk_claims",
            "load_connections",
            "run_date",
        }
    )


def _finish(
    settings: Settings, target: Target, result: RunResult, sampler: ResourceSampler, progress_log: ProgressLog
) -> None:
    from claims_etl.engine.writers import writer_processes  # noqa: PLC0415 (cold start)

    metrics = result.metrics
    metrics.claims_read, metrics.claims_rejected, metrics.seconds = (
        result.claims_read,
        result.claims_rejected,
        result.seconds,
    )
    if result.status != "succeeded":  # its throughput from what it committed (ops/metrics.claims_per_second)
        metrics.claims_committed = result.claims_priced + result.claims_rejected + result.claims_quarantined
    metrics.take_resources(sampler)
    workers = len({r["worker"] for r in result.ranges}) if settings.engine == "dask" else 0
    writers = writer_processes(settings) if settings.engine == "local" else 0
    metrics.connections = {  # the driver's (run lock and marks, run log, then the start-up's three or the
        # reads' connectorx partitions, whichever is more), plus each worker's and writer's
        "source": {
            "used": max(settings.partitions, 3) + 2 + workers * (settings.task_partitions() + 1),
            "configured": settings.source_connection_limit,
        },
        "target": {"used": 1 + workers + writers, "configured": settings.target_connection_limit},
    }
    result.alerts = evaluate_alerts(metrics, settings, baseline(settings, result.run_id))
    for alert in result.alerts:  # also in the summary; a failed run's stderr still ends with its one error line
        log.warning(
            "alert fired",
            extra={"alert": alert.name, "value": alert.value, "threshold": alert.threshold, "detail": alert.message},
        )
    _record_finish(settings, target, result)
    progress_log.finish(result.status, result.as_dict())


def _record_finish(settings: Settings, target: Target, result: RunResult) -> None:
    """Store the run's outcome. A failed run's connection may be what failed: then try a fresh one,
    and if the warehouse is unreachable altogether, the run's own error is what the operator sees."""
    from claims_etl.ops import run_records  # noqa: PLC0415 (cold start)
    from claims_etl.targets import connect_target  # noqa: PLC0415 (cold start)

    def record(on: Target) -> None:
        counts = (result.claims_read, result.claims_priced, result.claims_rejected)
        run_records.record_finish(
            on,
            result.run_id,
            finished_at=datetime.now(UTC),
            status=result.status,
            counts=counts,
            stages=result.stages,
            samples=result.samples(succeeded=result.status == "succeeded"),
            alerts=result.alerts,
        )

    try:
        record(target)
    except ClaimsEtlError:
        if result.status == "succeeded":
            raise
        target.rollback_quietly()  # release the run's row locks before another session updates it
        try:
            fresh = connect_target(settings)
            try:
                record(fresh)
            finally:
                fresh.close()
        except ClaimsEtlError as error:
            log.debug("could not record the failed run's status: %s", " ".join(str(error).split()))


@contextmanager
def _stage(timer: StageTimer, progress: Progress, name: str, rows_in: int = 0) -> Iterator[StageRecord]:
    """A timed stage whose start and end are published as progress."""
    with timer.stage(name, rows_in=rows_in) as record:
        progress(name, 0, rows_in)
        yield record
        progress(name, record.rows_out, max(rows_in, record.rows_out))


@dataclass(frozen=True)
class _Working:
    """What the stages of one run share: its settings, both sessions, the stage timer, the result being
    filled, its progress and its fault hooks."""

    settings: Settings
    source: psycopg.Connection[Any]
    target: Target
    timer: StageTimer
    result: RunResult
    progress: Progress
    faults: Faults


def _stages(run: _Working, starting: StartUp, killed: list[str]) -> None:
    from claims_etl.ops import run_records  # noqa: PLC0415 (cold start)

    settings, source, result = run.settings, run.source, run.result
    if killed:  # best effort, as in the run log: the dashboard and report show them failed
        run_records.mark_killed(run.target, killed, datetime.now(UTC))
    stopping.keep_sigint()  # before the first Polars query
    stopping.check()  # asked to stop while starting: before anything is leased
    leased = starting.leased(into=run.timer.records)  # committed now, once the preflight passed
    result.claims_unpriceable = starting.unpriceable()
    ranges = leases.plan(source, result.run_id)
    leases.fence(run.target, leased.taken_from, datetime.now(UTC))  # before any write: see write.write_tables
    run.faults("after_lease")
    run.faults("pause_after_lease")  # tests/integration/crash/test_range_leases.py commits claims here
    result.claims_recovered = leased.recovered
    try:
        _ranges(run, ranges, leased.total, starting)
    except RunInterruptedError:
        if settings.engine == "local":  # stopped at a boundary: every chunk written is marked (engine/stopping.py)
            leases.release_stopped(source, result.run_id)
        raise


def _ranges(run: _Working, ranges: list[leases.ClaimRange], leased: int, starting: StartUp) -> None:
    """The reference frames (loaded meanwhile), then every range: extract, validate, price, load."""
    from claims_etl.engine.local import work_locally  # noqa: PLC0415 (cold start)

    settings = run.settings
    stopping.check()
    frames, cache = starting.reference(run.timer.records)
    run.result.metrics.cache = cache.as_dict()
    stopping.check()
    outcomes: list[RangeOutcome] = []
    tally = _Tally(run.progress, total=leased)
    try:
        if settings.engine == "dask":
            _dask_engine().work(settings, ranges, frames, datetime.now(UTC), tally, outcomes, run.faults)
        else:
            work_locally(
                settings, ranges, frames, source=run.source, target=run.target, tally=tally, outcomes=outcomes,
                faults=run.faults,
            )  # fmt: skip
    finally:
        run.result.absorb(outcomes)
        run.timer.records.extend(merged_stages(outcomes))


def _mark_killed_runs(source: psycopg.Connection[Any], run_id: str) -> list[str]:
    """Runs a SIGKILL or a lost machine left `running`: failed (killed) in the run log, so the
    dashboard and report show them failed; returned, for etl_runs (`_stages`)."""
    killed = mark_killed(source, run_id)
    if killed:
        log.info("killed runs marked failed", extra={"killed_runs": sorted(killed)})
    return killed


def _dask_engine() -> ModuleType:
    """claims_etl.engine.dask_engine, imported only when asked for: dask is an optional extra."""
    try:
        return importlib.import_module("claims_etl.engine.dask_engine")
    except ImportError as error:
        raise ConfigurationError(
            f"the dask engine needs the dask extra (pip install 'claims-etl[dask]'): {error}"
        ) from None


@dataclass
class _Tally:
    """Per-stage running totals of the range stages, published as progress."""

    progress: Progress
    total: int
    done: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)  # called from the prepare and mark threads

    def __call__(self, stage: str, rows: int) -> None:
        with self.lock:
            self.done[stage] += rows
            self.progress(stage, self.done[stage], self.total)
