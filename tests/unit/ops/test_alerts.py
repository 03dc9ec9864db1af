"""Alerts (claims_etl/ops/metrics.py): each fires on the condition it protects, none on a healthy run; the
cache, report, export and dashboard on the real databases and Redis are in tests/integration/ops/test_operations.py."""

from __future__ import annotations

import pytest

from claims_etl.ops.alerts import PastRun, evaluate_alerts
from claims_etl.ops.metrics import RunMetrics
from claims_etl.settings import Settings


def _metrics(**overrides: object) -> RunMetrics:
    quiet = RunMetrics(
        claims_read=100_000,
        claims_rejected=1_000,
        seconds=1.0,
        cpu_percent_max=50.0,
        memory_percent_max=40.0,
        cache={"hit_rate": 1.0},
        connections={"source": {"used": 4, "configured": 20}, "target": {"used": 1, "configured": 4}},
    )
    for key, value in overrides.items():
        setattr(quiet, key, value)
    return quiet


def _past(runs: int, *, per_second: float = 20_000.0, rejected: float = 0.05, version: str = "v1") -> list[PastRun]:
    """`runs` succeeded runs of 100,000 claims each, the newest an hour ago."""
    return [PastRun(100_000, per_second, rejected, version, 3_600.0 * (n + 1)) for n in range(runs)]


REDIS = Settings(redis_url="redis://127.0.0.1:6379/0")


def test_no_alert_when_every_threshold_holds() -> None:
    assert evaluate_alerts(_metrics(), Settings(), _past(10, per_second=120_000.0, rejected=0.01)) == []


def test_a_healthy_first_run_on_a_busy_machine_raises_none() -> None:
    """Issue 31's demo and 20k runs: 5.017% rejected (the seeded share), the CPU at 100%, a cold
    in-process cache without Redis, 4,550 claims/s, and no runs before it."""
    demo = _metrics(claims_read=20_000, claims_rejected=1_003, seconds=20_000 / 4_550, cpu_percent_max=100.0)
    demo.cache = {"version": "v1", "hit_rate": 0.0, "misses": 1}
    assert evaluate_alerts(demo, Settings(), []) == []
    assert evaluate_alerts(demo, Settings(), _past(10, per_second=5_000.0)) == []  # as fast as usual


def test_throughput_low_fires_below_half_the_recent_median_only() -> None:
    slow = _metrics(seconds=100_000 / 9_000)  # 9,000 claims/s
    assert [a.name for a in evaluate_alerts(slow, Settings(), _past(5))] == ["throughput_low"]  # median 20,000
    assert evaluate_alerts(_metrics(seconds=100_000 / 11_000), Settings(), _past(5)) == []  # above half
    assert evaluate_alerts(slow, Settings(), _past(2)) == []  # two runs are no baseline
    small = _metrics(claims_read=500, claims_rejected=0, seconds=1.0)
    assert evaluate_alerts(small, Settings(), _past(5)) == []  # set-up dominates small runs


def test_throughput_low_fires_below_a_set_floor_without_a_baseline() -> None:
    floor = Settings(alert_min_claims_per_second=200_000.0)
    [alert] = evaluate_alerts(_metrics(), floor, [])
    assert (alert.name, alert.threshold) == ("throughput_low", 200_000.0)


def test_rejection_rate_high_fires_above_the_recent_median_by_the_margin_or_above_the_ceiling() -> None:
    usual = _past(5, rejected=0.05)
    assert [a.name for a in evaluate_alerts(_metrics(claims_rejected=12_000), Settings(), usual)] == [
        "rejection_rate_high"
    ]
    assert evaluate_alerts(_metrics(claims_rejected=9_000), Settings(), usual) == []  # 9% against 5% + 5 points
    assert evaluate_alerts(_metrics(claims_rejected=12_000), Settings(), []) == []  # no baseline, under 50%
    assert [a.name for a in evaluate_alerts(_metrics(claims_rejected=60_000), Settings(), [])] == [
        "rejection_rate_high"
    ]


def test_cache_hit_rate_low_fires_only_where_a_shared_cache_should_have_held_the_frames() -> None:
    missed = _metrics(cache={"version": "v1", "hit_rate": 0.0, "misses": 1})
    assert [a.name for a in evaluate_alerts(missed, REDIS, _past(3))] == ["cache_hit_rate_low"]  # same version
    assert evaluate_alerts(missed, Settings(), _past(3)) == []  # no shared cache: every process starts cold
    assert evaluate_alerts(missed, REDIS, _past(3, version="v0")) == []  # a new reference version
    assert evaluate_alerts(missed, REDIS, []) == []  # the first run fills it
    expired = [PastRun(100_000, 20_000.0, 0.05, "v1", 8 * 24 * 3_600.0)]
    assert evaluate_alerts(missed, REDIS, expired) == []  # past the entries' lifetime
    failing = _metrics(cache={"version": "v2", "hit_rate": 0.0, "misses": 1, "redis_errors": 1})
    assert [a.name for a in evaluate_alerts(failing, REDIS, [])] == ["cache_hit_rate_low"]
    assert evaluate_alerts(_metrics(cache={"version": "v1", "hit_rate": 1.0}), REDIS, _past(3)) == []


@pytest.mark.parametrize(
    ("overrides", "settings", "alert"),
    [
        ({"cpu_percent_max": 95.0}, {"alert_max_cpu_percent": 90.0}, "cpu_high"),
        ({"memory_percent_max": 86.0}, {}, "memory_high"),
        ({"connections": {"source": {"used": 19, "configured": 20}}}, {}, "connections_high_source"),
    ],
)
def test_each_resource_alert_fires_when_its_limit_is_crossed(
    overrides: dict[str, object], settings: dict[str, object], alert: str
) -> None:
    assert [a.name for a in evaluate_alerts(_metrics(**overrides), Settings(**settings), _past(5))] == [alert]


def test_cpu_at_its_limit_raises_no_alert_unless_a_limit_is_set() -> None:
    assert evaluate_alerts(_metrics(cpu_percent_max=100.0), Settings(), _past(5)) == []
