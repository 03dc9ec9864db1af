"""CI performance regression gate: a fixed workload, the pipeline timed against a calibration measured
in the same run (the sink floor: turbodbc inserting the same output rows alone), compared with the
committed baseline ratio. Absolute seconds vary with the machine and its load; the ratio of two
timings taken side by side varies much less.

    python benchmarks/gate.py            # check against benchmarks/baseline.json
    python benchmarks/gate.py --update   # measure and write a new baseline (after an intended change)
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
WORKLOAD = {"target": "mariadb", "claims": 20_000, "seed": 7}


def measure(repeats: int) -> dict[str, Any]:
    """Warm-up once (page cache, connection set-up, imports), then `repeats` measured rounds."""
    ratios, runs, floors = [], [], []
    for round_number in range(repeats + 1):
        harness.fresh_databases(WORKLOAD["target"], WORKLOAD["claims"], WORKLOAD["seed"])  # type: ignore[arg-type]
        floor = harness.sink_floor(str(WORKLOAD["target"]))
        run = harness.timed_run(str(WORKLOAD["target"]))["seconds"]
        if round_number == 0:
            continue
        floors.append(floor)
        runs.append(run)
        ratios.append(run / floor)
    return {
        "workload": WORKLOAD,
        "repeats": repeats,
        # median run over median floor: steadier than the median of per-round ratios, because the short
        # floor (~0.5 s) is the noisier of the two timings
        "ratio_median": statistics.median(runs) / statistics.median(floors),
        "ratios": [round(r, 3) for r in ratios],
        "run_seconds": [round(r, 3) for r in runs],
        "floor_seconds": [round(f, 3) for f in floors],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--update", action="store_true", help="write the measurement as the new baseline")
    args = parser.parse_args()
    measured = measure(args.repeats)
    if args.update:
        previous = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"tolerance": 0.35}
        kept = {key: value for key, value in previous.items() if key.startswith("tolerance")}
        BASELINE.write_text(json.dumps(measured | kept, indent=2) + "\n")
        print(f"baseline written: run/floor {measured['ratio_median']:.2f}x ({measured['ratios']})")
        return 0
    baseline = json.loads(BASELINE.read_text())
    limit = baseline["ratio_median"] * (1 + baseline["tolerance"])
    verdict = "ok" if measured["ratio_median"] <= limit else "REGRESSION"
    print(
        f"perf gate: run/floor {measured['ratio_median']:.2f}x (rounds {measured['ratios']}, runs "
        f"{measured['run_seconds']} s, floors {measured['floor_seconds']} s); baseline "
        f"{baseline['ratio_median']:.2f}x, limit {limit:.2f}x (+{baseline['tolerance']:.0%}): {verdict}"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
