"""A run's entry point: its result, its first statement, then the stages (`engine.stages_run`).

The run's first statement (its run lock, docs/design.md) goes to the source before the stages' heavy
modules (Polars, Arrow, the warehouse drivers) are imported: `claims-etl run` reaches its database
fast (docs/performance.md, cold start), and the stages' modules load while nothing else is waiting.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from claims_etl.db.source import lock_run, require_set_up, source_connection
from claims_etl.engine import stopping
from claims_etl.errors import ClaimsEtlError, RunInterruptedError, scrub
from claims_etl.ops import logs
from claims_etl.ops.metrics import LAST_SUCCESS, Alert, RunMetrics, Sample, previous_value, write_textfile
from claims_etl.ops.progress_log import ProgressLog, last_success
from claims_etl.ops.timing import StageRecord
from claims_etl.settings import Settings

if TYPE_CHECKING:
    from claims_etl.engine.range_work import RangeOutcome

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
    # Why a run that did not succeed ended (`fail`): `note` "interrupted" for SIGINT or SIGTERM, as
    # "killed" is for a run found dead; `error` its class, stage and scrubbed message.
    note: str | None = None
    error: dict[str, Any] | None = None

    @property
    def ranges(self) -> list[dict[str, Any]]:
        """Per range: number, worker, attempt, claims and stage seconds (kept in the run's metrics)."""
        return self.metrics.ranges

    def absorb(self, outcomes: Sequence[RangeOutcome]) -> None:
        """Counts and metrics of the ranges worked (all of them, or those done before a failure)."""
        from claims_etl.engine.outcomes import merged_places_of_service, merged_rejections  # noqa: PLC0415 (cold start)

        self.claims_read = sum(o.claims_read for o in outcomes)
        # A range not loaded whole (the run stopped or failed in it) counts what it committed and marked.
        self.claims_priced = sum(o.claims_priced if o.loaded else o.marked_priced for o in outcomes)
        self.claims_rejected = sum(o.claims_rejected if o.loaded else o.marked_rejected for o in outcomes)
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

    def fail(self, error: BaseException, *secrets: str) -> None:
        """Record why the run failed: SIGINT or SIGTERM (also a second one, which stops it at once) is
        the note `interrupted`; every failure keeps its error class, stage and message, scrubbed of
        `secrets` (the engine's own errors carry no claim data; another exception's text might, so only
        its class is kept, its traceback being on the run's stderr)."""
        if isinstance(error, KeyboardInterrupt):
            error = RunInterruptedError(stopping.requested() or signal.SIGINT, forced=True)
        if isinstance(error, RunInterruptedError):
            self.note = "interrupted"
        if isinstance(error, ClaimsEtlError):
            message = " ".join(scrub(str(error), *secrets).split())
        else:
            message = "unexpected error: its traceback is on the run's stderr"
        self.error = {"class": type(error).__name__, "stage": getattr(error, "stage", None), "message": message}

    def as_dict(self) -> dict[str, Any]:
        failure = {} if self.error is None else {"error": self.error}
        return {
            "run_id": self.run_id,
            "status": self.status,
            **({"note": self.note} if self.note else {}),
            **failure,
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
        try:
            with source_connection(settings) as source:
                lock_run(source, result.run_id)  # the run's first statement: alive from here on
                require_set_up(source)  # before any stage: one line saying "run claims-etl db init"
                from claims_etl.engine import stages_run  # noqa: PLC0415 (the heavy imports come after it)

                stages_run.work(settings, source, result, progress, progress_log, clock)
        finally:
            progress_log.close()
    return result


def samples(result: RunResult, *, succeeded: bool) -> list[Sample]:
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
                write_textfile(path, [*samples(result, succeeded=succeeded), *extra])
            except OSError as error:
                log.warning("metrics textfile not written: %s", error.strerror or type(error).__name__)
