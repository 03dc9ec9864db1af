"""What a run and its ranges did: `RangeOutcome` (one range, sent back from a Dask worker too),
`RunResult` (the run, as `claims-etl run --json` prints it), the progress callbacks, and a run's range
outcomes added up. Light on purpose: the run's entry imports these before its first statement
(docs/performance.md, cold start), so nothing here imports Polars, Arrow or a driver.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from claims_etl.engine import stopping
from claims_etl.errors import ClaimsEtlError, RunInterruptedError, scrub
from claims_etl.ops.alerts import Alert
from claims_etl.ops.metrics import RunMetrics, Sample
from claims_etl.ops.timing import StageRecord
from claims_etl.stages import RANGE_STAGES

Progress = Callable[[str, int, int], None]  # (stage, done, total): the run's listeners
Tally = Callable[[str, int], None]  # (stage, rows just done): a range's live progress


def no_tally(_stage: str, _rows: int) -> None:
    return None


@dataclass
class RangeOutcome:
    """What one range did, sent back to the driver (from a Dask worker too)."""

    number: int
    attempt: int = 1
    claims_read: int = 0
    claims_priced: int = 0
    claims_rejected: int = 0
    # Left out with a reason (docs/spec.md §7): unreadable in the source (extract), refused by the
    # warehouse, or already in it from another run (load.write_chunk).
    claims_quarantined: int = 0
    stages: list[StageRecord] = field(default_factory=list)
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)  # warn-severity hits on priced claims
    chunk_seconds: list[float] = field(default_factory=list)
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Each chunk's source marking: (wall clock at its start in epoch seconds, seconds): the report's timeline.
    marks: list[tuple[float, float]] = field(default_factory=list)
    # Claims loaded priced, by the claim's place of service: [claims, charge cents, allowed cents].
    by_place_of_service: dict[str, list[int]] = field(default_factory=dict)
    # Whether the range was loaded whole (every chunk marked, its lease released); until then the
    # claims marked priced and rejected so far are what it committed (RunResult.absorb counts those),
    # and, once its load stopped early, their rejections by rule.
    loaded: bool = False
    marked_priced: int = 0
    marked_rejected: int = 0
    marked_rejections: dict[str, int] = field(default_factory=dict)

    def count_loaded(self, by_place_of_service: Mapping[str, Sequence[int]], priced: int, rejected: int) -> None:
        """Add a marked chunk's priced claims per place of service (quarantined ones left out:
        stages/summary.totals_by_place_of_service) to the totals, and count what it committed (`loaded`)."""
        for pos, totals in by_place_of_service.items():
            before = self.by_place_of_service.get(pos, [0, 0, 0])
            self.by_place_of_service[pos] = [a + b for a, b in zip(before, totals, strict=True)]
        self.marked_priced += priced
        self.marked_rejected += rejected


def new_run_id(now: datetime) -> str:
    """A run's id: its start, sortable, and 8 random hex digits (a reprice's is `reprice-` and this)."""
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


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

    def samples(self, *, succeeded: bool) -> list[Sample]:
        """The run's metric samples: what etl_run_metrics stores and the textfile holds."""
        claims = {
            "priced": self.claims_priced,
            "rejected": self.claims_rejected,
            "quarantined": self.claims_quarantined,
            "recovered": self.claims_recovered,
        }
        return self.metrics.samples(self.stages, succeeded=succeeded, claims=claims)

    @property
    def outcome(self) -> str:
        """succeeded, interrupted (SIGINT or SIGTERM) or failed: the run record's and the closing event's."""
        return self.note or ("succeeded" if self.status == "succeeded" else "failed")

    def as_dict(self) -> dict[str, Any]:
        failure = {} if self.error is None else {"error": self.error}
        return {
            "run_id": self.run_id,
            "status": self.status,
            "outcome": self.outcome,
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


def merged_stages(outcomes: Iterable[RangeOutcome]) -> list[StageRecord]:
    """One record per range stage for the whole run: seconds and rows summed over ranges (for a Dask
    run, worker-seconds: they add up across workers), peak RSS the largest any range saw."""
    merged = {name: StageRecord(stage=name, outcome="not run") for name in RANGE_STAGES}
    for outcome in outcomes:
        for record in outcome.stages:
            total = merged[record.stage]
            if total.outcome == "not run":
                total.outcome, total.started_at = "ok", record.started_at
            total.started_at = min(total.started_at, record.started_at)  # the first range's start
            total.seconds += record.seconds
            total.rows_in += record.rows_in
            total.rows_out += record.rows_out
            total.peak_rss_bytes = max(total.peak_rss_bytes, record.peak_rss_bytes)
            if record.outcome != "ok":
                total.outcome = record.outcome
    return list(merged.values())


def merged_rejections(outcomes: Iterable[RangeOutcome], *, warnings: bool = False) -> dict[str, int]:
    """Claims rejected by each rule over the ranges (with `warnings`: priced claims warned by each);
    a range not loaded whole counts the rejected claims it committed."""
    total: Counter[str] = Counter()
    for outcome in outcomes:
        if warnings:
            total.update(outcome.warnings_by_rule)
        else:
            total.update(outcome.rejections_by_rule if outcome.loaded else outcome.marked_rejections)
    return dict(sorted(total.items()))


def merged_places_of_service(outcomes: Iterable[RangeOutcome]) -> list[dict[str, int | str]]:
    """Claims loaded priced, charge and allowed cents per place of service over the ranges, by POS."""
    total: dict[str, list[int]] = {}
    for outcome in outcomes:
        for pos, counts in outcome.by_place_of_service.items():
            total[pos] = [a + b for a, b in zip(total.get(pos, [0, 0, 0]), counts, strict=True)]
    return [
        {"place_of_service": pos, "claims": claims, "charge_cents": charge, "allowed_cents": allowed}
        for pos, (claims, charge, allowed) in sorted(total.items())
    ]
