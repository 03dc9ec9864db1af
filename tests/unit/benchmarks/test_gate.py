"""`make bench-gate` (benchmarks/gate.py, benchmarks/load_meter.py): a child's CPU is the gate's own, not
other programs', and the verdict judges run/floor on quiet rounds only while run CPU fails whatever the load."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks import gate, load_meter

BASELINE = {"ratio_median": 4.0, "tolerance": 0.25, "run_cpu_median": 3.0, "cpu_tolerance": 0.15}


def test_a_child_process_cpu_counts_as_the_gates_own() -> None:
    before = load_meter.snapshot()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    window = load_meter.between(before, load_meter.snapshot())
    assert window.own_cpu >= 0.1  # the child's CPU, reaped into the gate's cutime
    assert window.foreign_cpu <= window.seconds * 2  # at most the machine


def measured(ratios: list[float], quiet: int, run_cpu: float) -> dict[str, Any]:
    enough = quiet >= gate.MIN_CLEAN
    return {
        "rounds": len(ratios),
        "quiet_rounds": quiet,
        "ratio_median": sorted(ratios)[len(ratios) // 2] if enough else None,
        "ratio_median_all_rounds": sorted(ratios)[len(ratios) // 2],
        "ratios": ratios,
        "run_seconds": [],
        "floor_seconds": [],
        "foreign_cores": [0.1] * len(ratios),
        "run_cpu_median": run_cpu,
        "run_cpu": [run_cpu],
    }


def test_quiet_rounds_judge_run_over_floor() -> None:
    assert gate.judge("mariadb", measured([4.1] * 7, quiet=7, run_cpu=3.0), BASELINE) == "ok"
    assert gate.judge("mariadb", measured([5.5] * 7, quiet=7, run_cpu=3.0), BASELINE) == "regression"


def test_under_load_run_over_floor_is_not_judged_but_run_cpu_is() -> None:
    assert gate.judge("mariadb", measured([9.0] * 7, quiet=2, run_cpu=3.1), BASELINE) == "inconclusive"
    assert gate.judge("mariadb", measured([9.0] * 7, quiet=2, run_cpu=3.6), BASELINE) == "regression"
