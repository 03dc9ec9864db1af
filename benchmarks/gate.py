"""CI performance regression gate: fixed workloads, the pipeline timed against a calibration measured
in the same run (the sink floor: the target's bulk path inserting the same output rows alone: turbodbc
into MariaDB, COPY into PostgreSQL), each compared with its committed baseline ratio. Absolute seconds
vary with the machine and its load; the ratio of two timings taken side by side varies much less.

    python benchmarks/gate.py                       # check every sink against benchmarks/baseline.json
    python benchmarks/gate.py --update              # measure and write new baselines (after an intended change)
    python benchmarks/gate.py --targets mariadb     # one sink
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness

BASELINE = Path(__file__).parent / "baseline.json"
CLAIMS, SEED = 20_000, 7
TARGETS = ("mariadb", "postgresql-copy")


def measure(target: str, repeats: int) -> dict[str, Any]:
    """Warm-up once (page cache, connection set-up, imports), then `repeats` measured rounds."""
    ratios, runs, floors = [], [], []
    for round_number in range(repeats + 1):
        harness.fresh_databases(target, CLAIMS, SEED)
        floor = harness.sink_floor(target)
        run = harness.timed_run(target)["seconds"]
        if round_number == 0:
            continue
        floors.append(floor)
        runs.append(run)
        ratios.append(run / floor)
    return {
        "workload": {"target": target, "claims": CLAIMS, "seed": SEED},
        "repeats": repeats,
        # median run over median floor: steadier than the median of per-round ratios, because the short
        # floor (~0.5 s) is the noisier of the two timings
        "ratio_median": statistics.median(runs) / statistics.median(floors),
        "ratios": [round(r, 3) for r in ratios],
        "run_seconds": [round(r, 3) for r in runs],
        "floor_seconds": [round(f, 3) for f in floors],
    }


def verdict(target: str, measured: dict[str, Any], baseline: dict[str, Any]) -> bool:
    """Print the sink's line; True when its ratio is within the baseline's tolerance."""
    limit = baseline["ratio_median"] * (1 + baseline["tolerance"])
    ok = bool(measured["ratio_median"] <= limit)
    print(
        f"perf gate {target}: run/floor {measured['ratio_median']:.2f}x (rounds {measured['ratios']}, runs "
        f"{measured['run_seconds']} s, floors {measured['floor_seconds']} s); baseline "
        f"{baseline['ratio_median']:.2f}x, limit {limit:.2f}x (+{baseline['tolerance']:.0%}): "
        f"{'ok' if ok else 'REGRESSION'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--update", action="store_true", help="write the measurements as the new baselines")
    args = parser.parse_args()
    baselines: dict[str, dict[str, Any]] = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    passed = True
    for target in args.targets:
        measured = measure(target, args.repeats)
        if args.update:
            kept = {k: v for k, v in baselines.get(target, {"tolerance": 0.35}).items() if k.startswith("tolerance")}
            baselines[target] = measured | kept
            print(f"baseline {target} written: run/floor {measured['ratio_median']:.2f}x ({measured['ratios']})")
        else:
            passed &= verdict(target, measured, baselines[target])
    if args.update:
        BASELINE.write_text(json.dumps(baselines, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
