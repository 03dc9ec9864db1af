"""Wiring only: the order of the stages, their timing, progress, and the run's bookkeeping."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from claims_etl import faults, load, runs
from claims_etl.cache import reference_frames
from claims_etl.db import Target, connect_target, source_connection
from claims_etl.errors import ClaimsEtlError
from claims_etl.extract import extract, lease, lock_run
from claims_etl.metrics import Alert, ResourceSampler, RunMetrics, evaluate_alerts
from claims_etl.price import Priced, price
from claims_etl.runlog import RunLog
from claims_etl.settings import Settings
from claims_etl.timing import StageRecord, StageTimer
from claims_etl.validate import validate

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
    stages: list[StageRecord] = field(default_factory=list)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    @property
    def claims_per_second(self) -> float:
        return self.claims_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "claims_read": self.claims_read,
            "claims_priced": self.claims_priced,
            "claims_rejected": self.claims_rejected,
            "claims_recovered": self.claims_recovered,
            "seconds": round(self.seconds, 4),
            "claims_per_second": round(self.claims_per_second, 1),
            "stages": [stage.as_dict() for stage in self.stages],
            "metrics": self.metrics.as_dict(),
            "alerts": [alert.__dict__ for alert in self.alerts],
        }


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _options(settings: Settings) -> dict[str, Any]:
    """What the run was asked to do, for etl_runs.options: never connection strings."""
    return settings.model_dump(include={"batch_id", "limit", "partitions", "load_chunk_claims", "run_date"})


def run(settings: Settings, listeners: Sequence[Progress] = ()) -> RunResult:
    """Process pending claims end to end: lease, reference, extract, validate, price, load.

    `listeners` get (stage, done, total) as the run advances (the CLI's progress bars); progress is
    also published to staging.etl_run_log for `claims-etl dashboard` in another terminal."""
    started_at = datetime.now(UTC)
    result = RunResult(run_id=new_run_id(started_at))
    runlog = RunLog(settings, result.run_id, started_at)

    def progress(stage: str, done: int, total: int) -> None:
        runlog.advance(stage, done, total)
        for listener in listeners:
            listener(stage, done, total)

    target = connect_target(settings)
    try:
        runs.record_start(target, result.run_id, started_at, _options(settings))
        with ResourceSampler(enabled=settings.monitoring) as sampler:
            try:
                _stages(settings, target, StageTimer(records=result.stages), result, progress)
                result.status = "succeeded"
            except BaseException:  # an unexpected error or Ctrl-C fails the run just the same
                result.status = "failed"
                raise
            finally:
                sampler.stop()
                _finish(settings, target, result, sampler, runlog)
    finally:
        runlog.close()
        target.close()
    return result


def _finish(settings: Settings, target: Target, result: RunResult, sampler: ResourceSampler, runlog: RunLog) -> None:
    metrics = result.metrics
    metrics.claims_read, metrics.claims_rejected, metrics.seconds = (
        result.claims_read, result.claims_rejected, result.seconds,
    )  # fmt: skip
    metrics.take_resources(sampler)
    metrics.connections = {
        "source": {"used": settings.partitions + 2, "configured": settings.source_connection_limit},
        "target": {"used": 1, "configured": settings.target_connection_limit},
    }
    result.alerts = evaluate_alerts(metrics, settings)
    for alert in result.alerts:
        log.info("alert %s: %s", alert.name, alert.message)  # shown in the summary; stderr stays one line on failure
    _record_finish(settings, target, result)
    runlog.finish(result.status, result.as_dict())
    if settings.metrics_textfile:
        samples = metrics.samples(result.stages)
        Path(settings.metrics_textfile).write_text("".join(f"{sample.prometheus()}\n" for sample in samples))


def _record_finish(settings: Settings, target: Target, result: RunResult) -> None:
    """Store the run's outcome. A failed run's connection may be what failed: then try a fresh one,
    and if the warehouse is unreachable altogether, the run's own error is what the operator sees."""

    def record(on: Target) -> None:
        counts = (result.claims_read, result.claims_priced, result.claims_rejected)
        runs.record_finish(
            on, result.run_id, finished_at=datetime.now(UTC), status=result.status, counts=counts,
            stages=result.stages, samples=result.metrics.samples(result.stages), alerts=result.alerts,
        )  # fmt: skip

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
        with _stage(timer, progress, "lease") as stage:
            leased = lease(source, settings, run_id)
            stage.rows_out = leased.total
        faults.point(settings, "after_lease")
        result.claims_recovered = leased.recovered
        with _stage(timer, progress, "reference") as stage:
            frames, cache = reference_frames(settings)
            stage.rows_out = frames.rvu.height + frames.gpci.height
        result.metrics.cache = cache.as_dict()
        with _stage(timer, progress, "extract", leased.total) as stage:
            extracted = extract(settings, run_id, leased)
            stage.rows_out = extracted.claims.height
        faults.point(settings, "after_extract")
        result.claims_read = extracted.claims.height
        with _stage(timer, progress, "validate", extracted.claims.height) as stage:
            validated = validate(extracted.claims, extracted.lines, frames, run_date=settings.effective_run_date())
            stage.rows_out = validated.accepted_claims.height
        del extracted  # price needs only the accepted frames: free the raw rows before its joins
        faults.point(settings, "after_validate")
        result.claims_rejected = validated.rejected.height
        result.metrics.count_rejections(validated.rejected)
        with _stage(timer, progress, "price", validated.accepted_claims.height) as stage:
            priced = price(validated.accepted_claims, validated.accepted_lines, frames)
            stage.rows_out = priced.claims.height
        result.claims_priced = priced.claims.height
        rejected = validated.rejected
        del validated  # likewise the accepted frames, once priced
        faults.point(settings, "after_price")
        with _stage(timer, progress, "load", result.claims_read) as stage:
            stage.rows_out = _load(settings, source, target, rejected, priced, run_id, result, progress)


def _load(
    settings: Settings,
    source: psycopg.Connection[Any],
    target: Target,
    rejected: pl.DataFrame,
    priced: Priced,
    run_id: str,
    result: RunResult,
    progress: Progress,
) -> int:
    """Write chunk k+1 to the warehouse while chunk k's source statuses are marked (psycopg waits on
    PostgreSQL without the GIL; turbodbc holds it). Chunk k is marked only after its warehouse commit."""
    loaded_at, marked, total = datetime.now(UTC), 0, result.claims_read
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark") as marker:
        marking: Future[int] | None = None
        for number, chunk in enumerate(load.chunks(rejected, priced, settings.load_chunk_claims), start=1):
            checkpoint = partial(faults.point, settings, chunk=number)
            checkpoint("pause_before_write")
            with load.timed(result.metrics.chunk_seconds):
                load.write_chunk(target, chunk, run_id, loaded_at, checkpoint)
            checkpoint("after_commit")
            if marking is not None:
                marked += marking.result()
                progress("load", marked, total)
            marking = marker.submit(load.mark_chunk, source, chunk, run_id, loaded_at, checkpoint)
        if marking is not None:
            marked += marking.result()
    return marked
