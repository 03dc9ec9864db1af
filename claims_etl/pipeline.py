"""Wiring only: the order of the stages, their timing, and the run's bookkeeping."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg

from claims_etl import faults, load, runs
from claims_etl.db import Target, connect_target, source_connection
from claims_etl.errors import ClaimsEtlError
from claims_etl.extract import extract, lease, lock_run
from claims_etl.price import Priced, price
from claims_etl.reference import read_frames
from claims_etl.settings import Settings
from claims_etl.timing import StageRecord, StageTimer
from claims_etl.validate import Validated, validate

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    status: str = "running"
    claims_read: int = 0
    claims_priced: int = 0
    claims_rejected: int = 0
    claims_recovered: int = 0
    stages: list[StageRecord] = field(default_factory=list)

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
        }


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _options(settings: Settings) -> dict[str, Any]:
    """What the run was asked to do, for etl_runs.options: never connection strings."""
    return settings.model_dump(include={"batch_id", "limit", "partitions", "load_chunk_claims", "run_date"})


def run(settings: Settings) -> RunResult:
    """Process pending claims end to end: lease, reference, extract, validate, price, load."""
    started_at = datetime.now(UTC)
    result = RunResult(run_id=new_run_id(started_at))
    timer = StageTimer(records=result.stages)
    target = connect_target(settings)
    try:
        runs.record_start(target, result.run_id, started_at, _options(settings))
        try:
            _stages(settings, target, timer, result)
            result.status = "succeeded"
        except ClaimsEtlError:
            result.status = "failed"
            raise
        finally:
            _record_finish(settings, target, result)
    finally:
        target.close()
    return result


def _record_finish(settings: Settings, target: Target, result: RunResult) -> None:
    """Store the run's outcome. A failed run's connection may be what failed: then try a fresh one,
    and if the warehouse is unreachable altogether, the run's own error is what the operator sees."""

    def record(on: Target) -> None:
        counts = (result.claims_read, result.claims_priced, result.claims_rejected)
        runs.record_finish(
            on, result.run_id, finished_at=datetime.now(UTC), status=result.status, counts=counts, stages=result.stages
        )

    try:
        record(target)
    except ClaimsEtlError:
        if result.status == "succeeded":
            raise
        try:
            fresh = connect_target(settings)
            try:
                record(fresh)
            finally:
                fresh.close()
        except ClaimsEtlError as error:
            log.debug("could not record the failed run's status: %s", " ".join(str(error).split()))


def _stages(settings: Settings, target: Target, timer: StageTimer, result: RunResult) -> None:
    run_id = result.run_id
    with source_connection(settings) as source:
        lock_run(source, run_id)
        with timer.stage("lease") as stage:
            leased = lease(source, settings, run_id)
            stage.rows_out = leased.total
        faults.point(settings, "after_lease")
        result.claims_recovered = leased.recovered
        with timer.stage("reference") as stage:
            frames = read_frames(settings)
            stage.rows_out = frames.rvu.height + frames.gpci.height
        with timer.stage("extract", rows_in=leased.total) as stage:
            extracted = extract(settings, run_id, leased)
            stage.rows_out = extracted.claims.height
        faults.point(settings, "after_extract")
        result.claims_read = extracted.claims.height
        with timer.stage("validate", rows_in=extracted.claims.height) as stage:
            validated = validate(extracted.claims, extracted.lines, frames, run_date=settings.effective_run_date())
            stage.rows_out = validated.accepted_claims.height
        faults.point(settings, "after_validate")
        result.claims_rejected = validated.rejected.height
        with timer.stage("price", rows_in=validated.accepted_claims.height) as stage:
            priced = price(validated.accepted_claims, validated.accepted_lines, frames)
            stage.rows_out = priced.claims.height
        result.claims_priced = priced.claims.height
        faults.point(settings, "after_price")
        with timer.stage("load", rows_in=result.claims_read) as stage:
            stage.rows_out = _load(settings, source, target, validated, priced, run_id)


def _load(
    settings: Settings,
    source: psycopg.Connection[Any],
    target: Target,
    validated: Validated,
    priced: Priced,
    run_id: str,
) -> int:
    """Write chunk k+1 to the warehouse while chunk k's source statuses are marked (psycopg waits on
    PostgreSQL without the GIL; turbodbc holds it). Chunk k is marked only after its warehouse commit."""
    loaded_at, marked = datetime.now(UTC), 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark") as marker:
        marking: Future[int] | None = None
        for number, chunk in enumerate(load.chunks(validated, priced, settings.load_chunk_claims), start=1):
            checkpoint = partial(faults.point, settings, chunk=number)
            checkpoint("pause_before_write")
            load.write_chunk(target, chunk, run_id, loaded_at, checkpoint)
            checkpoint("after_commit")
            if marking is not None:
                marked += marking.result()
            marking = marker.submit(load.mark_chunk, source, chunk, run_id, loaded_at, checkpoint)
        if marking is not None:
            marked += marking.result()
    return marked
