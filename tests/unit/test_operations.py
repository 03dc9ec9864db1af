"""Alerts (claims_etl/ops/metrics.py): each fires when its threshold is crossed, none when all hold; the
cache, report, export and dashboard on the real databases and Redis are in tests/integration/test_operations.py."""

from __future__ import annotations

import pytest

from claims_etl.ops.metrics import RunMetrics, evaluate_alerts
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


def test_no_alert_when_every_threshold_holds() -> None:
    assert evaluate_alerts(_metrics(), Settings()) == []


@pytest.mark.parametrize(
    ("overrides", "alert"),
    [
        ({"seconds": 20.0}, "throughput_low"),  # 5,000 claims/s
        ({"cpu_percent_max": 95.0}, "cpu_high"),
        ({"memory_percent_max": 86.0}, "memory_high"),
        ({"cache": {"hit_rate": 0.5}}, "cache_hit_rate_low"),
        ({"claims_rejected": 6_000}, "rejection_rate_high"),
        ({"connections": {"source": {"used": 19, "configured": 20}}}, "connections_high_source"),
    ],
)
def test_each_alert_fires_when_its_threshold_is_crossed(overrides: dict[str, object], alert: str) -> None:
    assert [a.name for a in evaluate_alerts(_metrics(**overrides), Settings())] == [alert]


def test_throughput_alert_skips_small_runs() -> None:
    assert evaluate_alerts(_metrics(claims_read=500, claims_rejected=0, seconds=1.0), Settings()) == []
