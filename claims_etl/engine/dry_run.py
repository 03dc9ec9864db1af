"""`claims-etl run --dry-run`: what a run would do now, without doing it. The claims a run would take
over from dead runs' range leases, then the pending claims it would lease, are read page by page (a
range's worth at a time, so memory is one page's frames), validated and priced with the run's
reference frames, rules and pinned date, and only counted.

Invariant: nothing changes in either database. The source session is read-only, connectorx only
reads, the warehouse is not connected to at all; no lease, no status, no run log or etl_runs row
(only the Redis reference cache may be filled, as any reader of the reference frames fills it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from claims_etl.db.source import source_connection
from claims_etl.engine.leases import recoverable
from claims_etl.engine.stages_run import preflight
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cache import reference_frames
from claims_etl.settings import Settings
from claims_etl.stages.extract import Extracted, recoverable_pending, runnable_pending
from claims_etl.stages.price import Priced, price_keyed
from claims_etl.stages.summary import rejections_by_rule
from claims_etl.stages.validate import Validated, validate


def dollars(cents: int) -> str:
    """Exact dollars from integer cents, two decimals (no float on the way).

    >>> dollars(123456789012345), dollars(-5), dollars(0)
    ('1234567890123.45', '-0.05', '0.00')
    """
    return str(Decimal(cents).scaleb(-2))


@dataclass
class DryRun:
    """What a run would have done with the claims pending now."""

    claims_read: int = 0
    claims_recovered: int = 0  # of claims_read: in dead runs' range leases the run would take over
    claims_priced: int = 0
    claims_rejected: int = 0
    lines_read: int = 0
    lines_priced: int = 0
    charge_cents: int = 0  # of the priced lines, as priced_claim_lines would hold them
    allowed_cents: int = 0
    rejected_charge_cents: int = 0  # of the rejected claims' lines
    rejections_by_rule: Counter[str] = field(default_factory=Counter)
    warnings_by_rule: Counter[str] = field(default_factory=Counter)
    claims_unpriceable: dict[int, int] = field(default_factory=dict)  # left pending, by service year
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "claims_read": self.claims_read,
            "claims_recovered": self.claims_recovered,
            "claims_priced": self.claims_priced,
            "claims_rejected": self.claims_rejected,
            "lines_read": self.lines_read,
            "lines_priced": self.lines_priced,
            "charge": dollars(self.charge_cents),
            "allowed": dollars(self.allowed_cents),
            "rejected_charge": dollars(self.rejected_charge_cents),
            "rejections_by_rule": dict(sorted(self.rejections_by_rule.items())),
            "warnings_by_rule": dict(sorted(self.warnings_by_rule.items())),
            "claims_unpriceable": {str(year): claims for year, claims in self.claims_unpriceable.items()},
            "seconds": round(self.seconds, 4),
        }


def dry_run(settings: Settings) -> DryRun:
    """Validate and price the claims a run would take now and count them: first those of dead runs'
    range leases it would take over (`claims_recovered`, counted first against the limit as the run
    counts them: engine/leases.takeovers), then the pending claims it would lease (batch, the rest of
    the limit and skip-unpriceable applied); exit 2 on unpriceable claims exactly as a run would.
    Claims leased to a live run are not counted."""
    clock = time.perf_counter()
    settings = settings.model_copy(update={"run_date": settings.effective_run_date()})  # one "today", as a run
    result = DryRun()
    with source_connection(settings) as source:
        source.read_only = True  # every transaction of this session: a write would fail, not happen
        result.claims_unpriceable = preflight(source, settings)
        chosen = recoverable(source, settings.limit)
        source.commit()  # the dead runs' locks go at once: a real run may take them over now
    frames, _cache = reference_frames(settings)
    for part in chosen:
        for page in _pages(
            settings, part.take, partial(recoverable_pending, settings, part.low, part.high, part.batch_id)
        ):
            _count(result, page, frames, settings)
            result.claims_recovered += page.claims.height
    left = None if settings.limit is None else settings.limit - result.claims_recovered
    for page in _pages(settings, left, partial(runnable_pending, settings)):
        _count(result, page, frames, settings)
    result.seconds = time.perf_counter() - clock
    return result


def _pages(settings: Settings, claims: int | None, read: Callable[..., Extracted]) -> Iterator[Extracted]:
    """`read(after=, page=)` a range's worth at a time, in claim_id order, until `claims` (None: all)."""
    after: int | None = None
    remaining = claims
    while remaining is None or remaining > 0:
        page = read(
            after=after, page=settings.range_claims if remaining is None else min(settings.range_claims, remaining)
        )
        if page.claims.is_empty():
            return
        yield page
        after = int(page.claims.get_column("claim_id").max())  # type: ignore[arg-type]
        remaining = None if remaining is None else remaining - page.claims.height


def _count(result: DryRun, pending: Extracted, frames: ReferenceFrames, settings: Settings) -> None:
    """Validate and price one page as a run would; add its counts and cents (Polars sums) to the result."""
    validated = validate(
        pending.claims, pending.lines, frames, run_date=settings.effective_run_date(), rules=settings.rules().config
    )
    priced = price_keyed(validated.accepted_claims, validated.accepted_keyed_lines, frames)
    _add(result, pending, validated, priced)


def _add(result: DryRun, pending: Extracted, validated: Validated, priced: Priced) -> None:
    """Add one page's counts and cents (Polars sums) to the result."""
    rejected_lines = pending.lines.join(validated.rejected.select("claim_id"), on="claim_id", how="semi")
    result.claims_read += pending.claims.height
    result.lines_read += pending.lines.height
    result.claims_rejected += validated.rejected.height
    result.claims_priced += priced.claims.height
    result.lines_priced += priced.lines.height
    result.charge_cents += int(priced.lines.get_column("charge_cents").sum())
    result.allowed_cents += int(priced.lines.get_column("allowed_cents").sum())
    result.rejected_charge_cents += int(rejected_lines.get_column("charge_cents").sum())
    result.rejections_by_rule.update(dict(rejections_by_rule(validated.rejected).iter_rows()))
    result.warnings_by_rule.update(dict(validated.warnings.get_column("rule_id").value_counts().iter_rows()))
