"""Alerts, evaluated once at the end of a run against thresholds from Settings and the newest succeeded
runs (the baseline, progress_log.baseline), and stored with the run. Each means "someone should look"
(docs/operations.md, Alerts)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from claims_etl.ops.metrics import RunMetrics
from claims_etl.settings import Settings


@dataclass(frozen=True)
class Alert:
    name: str
    value: float
    threshold: float
    message: str


# Fewer succeeded runs than this make no baseline: a deployment's first runs are judged by the
# absolute limits alone.
MIN_BASELINE_RUNS = 3


@dataclass(frozen=True)
class PastRun:
    """One of the newest succeeded runs a run's alerts compare it with (progress_log.baseline)."""

    claims_read: int
    claims_per_second: float
    rejection_rate: float
    cache_version: str | None  # the reference version of its frames: the key of the cache entry it used
    seconds_ago: float  # since it finished


def _usual(values: list[float]) -> float | None:
    """The baseline's median, or None below MIN_BASELINE_RUNS runs."""
    return statistics.median(values) if len(values) >= MIN_BASELINE_RUNS else None


def _crossed(name: str, value: float, limits: list[tuple[float, str]], *, below: bool) -> list[Alert]:
    """One alert `name` when `value` is past any of `limits` (each with what it is), naming the
    tightest limit it is past; none otherwise."""
    past = [(limit, what) for limit, what in limits if (value < limit if below else value > limit)]
    if not past:
        return []
    limit, what = max(past) if below else min(past)
    sign = "<" if below else ">"
    return [Alert(name, round(value, 4), limit, f"{what}: {value:,.4g} {sign} {limit:,.4g}")]


def _throughput_alerts(metrics: RunMetrics, settings: Settings, baseline: Sequence[PastRun]) -> list[Alert]:
    """Claims/s below a share of the recent comparable runs' median (a slower database, a plan gone
    wrong, a machine shared with something new), or below an absolute floor when one is set. Runs of
    fewer than `alert_baseline_min_claims` claims are mostly set-up: neither judged nor a baseline."""
    enough = settings.alert_baseline_min_claims
    if metrics.claims_read < enough:
        return []
    limits = []
    if settings.alert_min_claims_per_second is not None:
        limits.append((settings.alert_min_claims_per_second, "claims/s below the set minimum"))
    usual = _usual([run.claims_per_second for run in baseline if run.claims_read >= enough])
    if usual is not None:
        drop = settings.alert_throughput_drop
        limits.append((usual * drop, f"claims/s below {drop:.0%} of the recent runs' median {usual:,.0f}"))
    return _crossed("throughput_low", metrics.claims_per_second, limits, below=True)


def _rejection_alerts(metrics: RunMetrics, settings: Settings, baseline: Sequence[PastRun]) -> list[Alert]:
    """The rejected share of claims above the recent runs' median by more than a margin (a producer
    sending something new, a rules file or reference release that refuses what it should not), or
    above an absolute share whatever the baseline (a deployment's first runs and small runs included:
    the share of fewer than `alert_baseline_min_claims` claims is mostly chance, so only the absolute
    share judges them)."""
    if metrics.claims_read == 0:
        return []
    limits = [(settings.alert_max_rejection_rate, "rejected share of claims above the set maximum")]
    enough = settings.alert_baseline_min_claims
    usual = _usual([run.rejection_rate for run in baseline if run.claims_read >= enough])
    if usual is not None and metrics.claims_read >= enough:
        rise = settings.alert_rejection_rate_rise
        limits.append(
            (usual + rise, f"rejected share above the recent runs' median {usual:.2%} by more than {rise:.0%}")
        )
    return _crossed("rejection_rate_high", metrics.rejection_rate, limits, below=False)


def _cache_alerts(metrics: RunMetrics, settings: Settings, baseline: Sequence[PastRun]) -> list[Alert]:
    """A shared cache (Redis) that should have held the reference frames did not: it failed or held a
    corrupt entry, or the newest succeeded run used the same reference version within the entries'
    lifetime. Without a shared cache every process starts cold, and a new version is a miss by nature."""
    from claims_etl.reference.cache import TTL_SECONDS  # noqa: PLC0415  (redis-free, but not at import)

    cache = metrics.cache
    if settings.redis_url is None or not cache:
        return []
    previous = baseline[0] if baseline else None
    same_version = previous is not None and previous.cache_version == cache.get("version")
    expected = same_version and previous is not None and previous.seconds_ago < TTL_SECONDS
    failed = bool(cache.get("redis_errors") or cache.get("corrupt_entries"))
    if not (expected or failed):
        return []
    limit = [(settings.alert_min_cache_hit_rate, "reference cache hit rate below the limit")]
    return _crossed("cache_hit_rate_low", float(cache.get("hit_rate", 1.0)), limit, below=True)


def _resource_alerts(metrics: RunMetrics, settings: Settings) -> list[Alert]:
    """Memory near the machine's end (a run's frames grow with its ranges), connections near what the
    databases grant, and CPU only where an operator sets a limit: a batch job that uses its cores is
    doing its work."""
    alerts = []
    if settings.alert_max_cpu_percent is not None:
        cpu = [(settings.alert_max_cpu_percent, "CPU above the set limit")]
        alerts += _crossed("cpu_high", metrics.cpu_percent_max, cpu, below=False)
    memory = [(settings.alert_max_memory_percent, "memory above limit")]
    alerts += _crossed("memory_high", metrics.memory_percent_max, memory, below=False)
    for database, counts in metrics.connections.items():
        use = counts["used"] / counts["configured"] if counts["configured"] else 0.0
        limit = [(settings.alert_max_connection_use, f"{database} connection use above limit")]
        alerts += _crossed(f"connections_high_{database}", use, limit, below=False)
    return alerts


def evaluate_alerts(metrics: RunMetrics, settings: Settings, baseline: Sequence[PastRun] = ()) -> list[Alert]:
    """The alerts one run raises, each a condition someone should look at (docs/operations.md,
    Alerts): throughput and the rejected share against `baseline` (the newest succeeded runs, newest
    first) and the absolute limits of Settings, the shared cache, memory, connections, CPU if set."""
    return [
        *_throughput_alerts(metrics, settings, baseline),
        *_resource_alerts(metrics, settings),
        *_cache_alerts(metrics, settings, baseline),
        *_rejection_alerts(metrics, settings, baseline),
    ]
