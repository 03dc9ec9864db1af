"""Wiring only: the order of the stages, their timing, progress, and the run's bookkeeping."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import psycopg

from claims_etl.db.connections import Target, connect_target, source_connection
from claims_etl.dev import fault_hooks
from claims_etl.engine import planning
from claims_etl.engine.local import work_locally
from claims_etl.engine.outcomes import merged_places_of_service, merged_rejections, merged_stages
from claims_etl.engine.range_work import RangeOutcome
from claims_etl.engine.writers import writer_processes
from claims_etl.errors import ClaimsEtlError, ConfigurationError
from claims_etl.ops import logs, run_records
from claims_etl.ops.metrics import (
    LAST_SUCCESS,
    Alert,
    ResourceSampler,
    RunMetrics,
    Sample,
    evaluate_alerts,
    previous_value,
    write_textfile,
)
from claims_etl.ops.progress_log import ProgressLog, last_success, mark_killed
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.reference.cache import reference_frames
from claims_etl.settings import Settings
from claims_etl.stages.extract import lease, lock_run, unpriceable_years

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class RunResult:
    run_id: str
    status: str = "running"
    claims_read: int = 0
    claims_priced: int = 0
    claims_rejected: int = 0
    claims_recovered: int = 0
    claims_quarantined: int = 0  # left out of the warehouse, status quarantined with a reason (docs/spec.md §7)
    claims_unpriceable: dict[int, int] = field(default_factory=dict)  # left pending, by service year
    stages: list[StageRecord] = field(default_factory=list)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    alerts: list[Alert] = field(default_factory=list)
    seconds: float = 0.0  # wall time, start to end; on Dask less than the stages' summed worker-seconds
    started_at: float = 0.0  # wall clock at the start (epoch seconds): the ranges' stage offsets count from it
    # Claims loaded priced, charge and allowed cents, per place of service (the HTML report's chart).
    places_of_service: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ranges(self) -> list[dict[str, Any]]:
        """Per range: number, worker, attempt, claims and stage seconds (kept in the run's metrics)."""
        return self.metrics.ranges

    def absorb(self, outcomes: Sequence[RangeOutcome]) -> None:
        """Counts and metrics of the ranges worked (all of them, or those done before a failure)."""
        self.claims_read = sum(o.claims_read for o in outcomes)
        self.claims_priced = sum(o.claims_priced for o in outcomes)
        self.claims_rejected = sum(o.claims_rejected for o in outcomes)
        self.claims_quarantined = sum(o.claims_quarantined for o in outcomes)
        self.metrics.rejections_by_rule = merged_rejections(outcomes)
        self.metrics.warnings_by_rule = merged_rejections(outcomes, warnings=True)
        self.metrics.chunk_seconds = [seconds for o in outcomes for seconds in o.chunk_seconds]
        self.places_of_service = merged_places_of_service(outcomes)
        self.metrics.ranges = [
            {
                "range": o.number,
                "worker": o.worker,
                "attempt": o.attempt,
                "claims": o.claims_read,
                "seconds": {s.stage: round(s.seconds, 4) for s in o.stages},
                # Seconds since the run's start: each stage's start, each chunk's marking [start, seconds].
                "started": {s.stage: round(s.started_at - self.started_at, 4) for s in o.stages},
                "marks": [[round(at - self.started_at, 4), round(seconds, 4)] for at, seconds in o.marks],
            }
            for o in outcomes
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "claims_read": self.claims_read,
            "claims_priced": self.claims_priced,
            "claims_rejected": self.claims_rejected,
            "claims_recovered": self.claims_recovered,
            "claims_quarantined": self.claims_quarantined,
            "claims_unpriceable": {str(year): claims for year, claims in self.claims_unpriceable.items()},
            "seconds": round(self.seconds, 4),
            "claims_per_second": round(self.metrics.claims_per_second, 1),
            "stages": [stage.as_dict() for stage in self.stages],
            "metrics": self.metrics.as_dict(),
            "alerts": [alert.__dict__ for alert in self.alerts],
            "ranges": self.ranges,
            "places_of_service": self.places_of_service,
        }


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


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


def run(settings: Settings, listeners: Sequence[Progress] = ()) -> RunResult:
    """Process pending claims end to end: lease, reference, extract, validate, price, load.

    `listeners` get (stage, done, total) as the run advances (the CLI's progress bars); progress is
    also published to staging.etl_run_log for `claims-etl dashboard` in another terminal."""
    started_at, clock = datetime.now(UTC), time.perf_counter()
    # One "today" for V09 across every range and worker, even for a run that crosses midnight.
    settings = settings.model_copy(update={"run_date": settings.effective_run_date()})
    result = RunResult(run_id=new_run_id(started_at), started_at=started_at.timestamp())
    progress_log = ProgressLog(settings, result.run_id, started_at)

    def progress(stage: str, done: int, total: int) -> None:
        progress_log.advance(stage, done, total)
        for listener in listeners:
            listener(stage, done, total)

    with logs.run_context(result.run_id), _metrics_textfile(settings, result):
        target = connect_target(settings)
        try:
            run_records.record_start(target, result.run_id, started_at, _options(settings))
            with ResourceSampler(enabled=settings.monitoring) as sampler:
                try:
                    _stages(settings, target, StageTimer(records=result.stages), result, progress)
                    result.status = "succeeded"
                except BaseException:  # an unexpected error or Ctrl-C fails the run just the same
                    result.status = "failed"
                    raise
                finally:
                    result.seconds = time.perf_counter() - clock
                    sampler.stop()
                    _finish(settings, target, result, sampler, progress_log)
        finally:
            progress_log.close()
            target.close()
    return result


def _finish(
    settings: Settings, target: Target, result: RunResult, sampler: ResourceSampler, progress_log: ProgressLog
) -> None:
    metrics = result.metrics
    metrics.claims_read, metrics.claims_rejected, metrics.seconds = (
        result.claims_read,
        result.claims_rejected,
        result.seconds,
    )
    metrics.take_resources(sampler)
    workers = len({r["worker"] for r in result.ranges}) if settings.engine == "dask" else 0
    writers = writer_processes(settings) if settings.engine == "local" else 0
    metrics.connections = {  # the driver's (lease, mark, run log, connectorx), plus each worker's and writer's
        "source": {
            "used": settings.partitions + 2 + workers * (settings.task_partitions() + 1),
            "configured": settings.source_connection_limit,
        },
        "target": {"used": 1 + workers + writers, "configured": settings.target_connection_limit},
    }
    result.alerts = evaluate_alerts(metrics, settings)
    for alert in result.alerts:
        log.info("alert %s: %s", alert.name, alert.message)  # shown in the summary; stderr stays one line on failure
    _record_finish(settings, target, result)
    progress_log.finish(result.status, result.as_dict())


def _samples(result: RunResult, *, succeeded: bool) -> list[Sample]:
    """The run's metric samples: what etl_run_metrics stores and the textfile holds."""
    claims = {
        "priced": result.claims_priced,
        "rejected": result.claims_rejected,
        "quarantined": result.claims_quarantined,
        "recovered": result.claims_recovered,
    }
    return result.metrics.samples(result.stages, succeeded=succeeded, claims=claims)


@contextmanager
def _metrics_textfile(settings: Settings, result: RunResult) -> Iterator[None]:
    """After every run, also one that failed before it recorded anything: the Prometheus textfile
    (`CLAIMS_ETL_METRICS_TEXTFILE`), with the last success's time, this run's or, for a failed run, the
    newest of the run log's and the file's. A run that raised failed, even one whose stages all
    succeeded (its records could not be written). Best effort: a file not written is a warning."""
    succeeded = False
    try:
        yield
        succeeded = result.status == "succeeded"
    finally:
        path = settings.metrics_textfile
        if path:
            if succeeded:
                last: float | None = time.time()
            else:
                last = max(filter(None, (last_success(settings), previous_value(path, LAST_SUCCESS))), default=None)
            extra = [] if last is None else [Sample(LAST_SUCCESS, last)]
            try:
                write_textfile(path, [*_samples(result, succeeded=succeeded), *extra])
            except OSError as error:
                log.warning("metrics textfile not written: %s", error.strerror or type(error).__name__)


def _record_finish(settings: Settings, target: Target, result: RunResult) -> None:
    """Store the run's outcome. A failed run's connection may be what failed: then try a fresh one,
    and if the warehouse is unreachable altogether, the run's own error is what the operator sees."""

    def record(on: Target) -> None:
        counts = (result.claims_read, result.claims_priced, result.claims_rejected)
        run_records.record_finish(
            on,
            result.run_id,
            finished_at=datetime.now(UTC),
            status=result.status,
            counts=counts,
            stages=result.stages,
            samples=_samples(result, succeeded=result.status == "succeeded"),
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


def _stages(settings: Settings, target: Target, timer: StageTimer, result: RunResult, progress: Progress) -> None:
    run_id = result.run_id
    with source_connection(settings) as source:
        lock_run(source, run_id)
        _mark_killed_runs(source, target, run_id)
        with _stage(timer, progress, "lease") as stage:
            result.claims_unpriceable = preflight(source, settings)
            leased = lease(
                source,
                settings,
                run_id,
                claims_per_range=settings.range_claims,
                first_range_claims=planning.first_range_claims(settings),
            )
            work = planning.plan(source, run_id)
            stage.rows_out = leased.total
        run_records.fence(target, leased.taken_from, datetime.now(UTC))  # before any write: see load.write_tables
        fault_hooks.point(settings, "after_lease")
        fault_hooks.point(settings, "pause_after_lease")  # tests/crash/test_range_leases.py commits claims here
        result.claims_recovered = leased.recovered
        with _stage(timer, progress, "reference") as stage:
            frames, cache = reference_frames(settings)
            stage.rows_out = frames.rvu.height + frames.gpci.height
        result.metrics.cache = cache.as_dict()
        outcomes: list[RangeOutcome] = []
        tally = _Tally(progress, total=leased.total)
        try:
            if settings.engine == "dask":
                _dask_engine().work(settings, work, frames, datetime.now(UTC), tally, outcomes)
            else:
                work_locally(settings, work, frames, source=source, target=target, tally=tally, outcomes=outcomes)
        finally:
            result.absorb(outcomes)
            timer.records.extend(merged_stages(outcomes))


def preflight(source: psycopg.Connection[Any], settings: Settings) -> dict[int, int]:
    """Before leasing: pending claims no loaded release can price stop the run (exit 2), or with
    `skip_unpriceable` stay pending (one warning). Either way none is leased or rejected."""
    unpriceable = unpriceable_years(source, settings)
    if not unpriceable:
        return {}
    years = ", ".join(f"{year} ({claims:,} claims)" for year, claims in unpriceable.items())
    if not settings.skip_unpriceable:
        raise ConfigurationError(
            f"no fee schedule release in force for pending claims' service dates in {years}: "
            "load it (claims-etl reference load) or run with --skip-unpriceable; nothing leased"
        )
    log.warning("leaving claims pending, no fee schedule release in force: %s", years)
    return unpriceable


def _mark_killed_runs(source: psycopg.Connection[Any], target: Target, run_id: str) -> None:
    """Runs a SIGKILL or a lost machine left `running`: failed (killed) in the run log, so the
    dashboard and report show them failed, and, best effort, in etl_runs."""
    killed = mark_killed(source, run_id)
    if killed:
        log.info("runs found killed, marked failed: %s", ", ".join(killed))
        run_records.mark_killed(target, killed, datetime.now(UTC))


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
