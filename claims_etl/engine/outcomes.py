"""A run's range outcomes added up: stage records and rejections by rule for the whole run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from claims_etl.engine.range_work import RangeOutcome
from claims_etl.ops.timing import StageRecord
from claims_etl.stages import RANGE_STAGES


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
