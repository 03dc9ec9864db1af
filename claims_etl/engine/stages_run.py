"""Wiring only: the order of the stages, their timing, progress, and the run's bookkeeping, on the
run's source session (its run lock taken: `engine.pipeline.run`)."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import psycopg

from claims_etl.dev import fault_hooks
from claims_etl.engine import leases, stopping
from claims_etl.engine.local import work_locally
from claims_etl.engine.outcomes import merged_stages
from claims_etl.engine.pipeline import Progress, RunResult, samples
from claims_etl.engine.range_work import RangeOutcome
from claims_etl.engine.writers import writer_processes
from claims_etl.errors import ClaimsEtlError, ConfigurationError, RunInterruptedError
from claims_etl.ops import run_records
from claims_etl.ops.metrics import ResourceSampler, evaluate_alerts
from claims_etl.ops.progress_log import ProgressLog, baseline, mark_killed
from claims_etl.ops.timing import StageRecord, StageTimer
from claims_etl.reference.cache import reference_frames
from claims_etl.settings import Settings
from claims_etl.stages.extract import unpriceable_years
from claims_etl.targets import Target, connect_target

log = logging.getLogger(__name__)


def work(
    settings: Settings,
    source: psycopg.Connection[Any],
    result: RunResult,
    progress: Progress,
    progress_log: ProgressLog,
    clock: float,
) -> None:
    """The run after its first statement: its etl_runs row, the stages, its records, on the warehouse
    session opened here and the source session (`source`, the run lock held) given."""
    target = connect_target(settings)
    try:
        started_at = datetime.fromtimestamp(result.started_at, UTC)
        run_records.record_start(target, result.run_id, started_at, _options(settings))
        with ResourceSampler(enabled=settings.monitoring) as sampler:
            try:
                _stages(settings, source, target, StageTimer(records=result.stages), result, progress)
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
    metrics.connections = {  # the driver's (lease, mark, run log, connectorx), plus each worker's and writer's
        "source": {
            "used": settings.partitions + 2 + workers * (settings.task_partitions() + 1),
            "configured": settings.source_connection_limit,
        },
        "target": {"used": 1 + workers + writers, "configured": settings.target_connection_limit},
    }
    result.alerts = evaluate_alerts(metrics, settings, baseline(settings, result.run_id))
    for alert in result.alerts:
        log.info("alert %s: %s", alert.name, alert.message)  # shown in the summary; stderr stays one line on failure
    _record_finish(settings, target, result)
    progress_log.finish(result.status, result.as_dict())


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
            samples=samples(result, succeeded=result.status == "succeeded"),
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


def _stages(
    settings: Settings,
    source: psycopg.Connection[Any],
    target: Target,
    timer: StageTimer,
    result: RunResult,
    progress: Progress,
) -> None:
    run_id = result.run_id
    _mark_killed_runs(source, target, run_id)
    stopping.check()  # asked to stop while starting: before anything is leased
    with _stage(timer, progress, "lease") as stage:
        result.claims_unpriceable = preflight(source, settings)
        leased = leases.take(
            source,
            settings,
            run_id,
            claims_per_range=settings.range_claims,
            first_range_claims=leases.first_range_claims(settings),
        )
        ranges = leases.plan(source, run_id)
        stage.rows_out = leased.total
    leases.fence(target, leased.taken_from, datetime.now(UTC))  # before any write: see write.write_tables
    fault_hooks.point(settings, "after_lease")
    fault_hooks.point(settings, "pause_after_lease")  # tests/crash/test_range_leases.py commits claims here
    result.claims_recovered = leased.recovered
    try:
        _ranges(settings, source, target, timer, result, progress, ranges, leased.total)
    except RunInterruptedError:
        if settings.engine == "local":  # stopped at a boundary: every chunk written is marked (engine/stopping.py)
            leases.release_stopped(source, run_id)
        raise


def _ranges(
    settings: Settings,
    source: psycopg.Connection[Any],
    target: Target,
    timer: StageTimer,
    result: RunResult,
    progress: Progress,
    ranges: list[leases.ClaimRange],
    leased: int,
) -> None:
    """The reference frames, then every range: extract, validate, price, load."""
    stopping.check()
    with _stage(timer, progress, "reference") as stage:
        frames, cache = reference_frames(settings)
        stage.rows_out = frames.rvu.height + frames.gpci.height
    result.metrics.cache = cache.as_dict()
    stopping.check()
    outcomes: list[RangeOutcome] = []
    tally = _Tally(progress, total=leased)
    try:
        if settings.engine == "dask":
            _dask_engine().work(settings, ranges, frames, datetime.now(UTC), tally, outcomes)
        else:
            work_locally(settings, ranges, frames, source=source, target=target, tally=tally, outcomes=outcomes)
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
