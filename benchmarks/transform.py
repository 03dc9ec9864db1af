"""Validate + price alone (`make bench-transform`): the engine's own CPU work on real extracted frames.

    python benchmarks/transform.py --claims 100000 --repeats 7

Seeds fresh databases, reads the pending claims, their lines and the reference frames once (connectorx,
as a run does), then times `validate` and `price_keyed` (the run's pricing call) in this process,
`--repeats` times after a warm-up. Reports median/min/max seconds of each, claims/s of both together,
and CPU seconds (all threads), and writes JSON next to the other results. With `CLAIMS_ETL_RULES_FILE`
set, validate and price run under that rules file (docs/spec.md §5.1), as a run would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness
from claims_etl.reference.store import read_frames
from claims_etl.stages.extract import read_pending
from claims_etl.stages.price import price_keyed
from claims_etl.stages.validate import validate


def measure(claims: int, repeats: int, seed: int) -> dict[str, Any]:
    harness.fresh_databases("mariadb", claims, seed=seed)
    settings = harness.settings_for("mariadb")
    pending, reference = read_pending(settings), read_frames(settings)
    run_date, rules = settings.effective_run_date(), settings.rules()
    seconds: dict[str, list[float]] = {"validate": [], "price": [], "both": [], "cpu": []}
    for repeat in range(repeats + 1):  # round 0 warms up caches and Polars' thread pool
        cpu, started = time.process_time(), time.perf_counter()
        validated = validate(pending.claims, pending.lines, reference, run_date=run_date, rules=rules.config)
        validated_at = time.perf_counter()
        price_keyed(validated.accepted_claims, validated.accepted_keyed_lines, reference)  # as a run prices
        done = time.perf_counter()
        if repeat:
            seconds["validate"].append(validated_at - started)
            seconds["price"].append(done - validated_at)
            seconds["both"].append(done - started)
            seconds["cpu"].append(time.process_time() - cpu)
    both = statistics.median(seconds["both"])
    return {
        "claims": pending.claims.height,
        "lines": pending.lines.height,
        "rejected": validated.rejected.height,
        "warnings": validated.warnings.height,
        "rules_sha256": rules.sha256,
        "repeats": repeats,
        **{name: harness.spread(values) for name, values in seconds.items()},
        "claims_per_second": pending.claims.height / both,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine(),
        **measure(args.claims, args.repeats, args.seed),
    }
    harness.RESULTS.mkdir(exist_ok=True)
    output = args.output or harness.RESULTS / f"transform-{args.claims}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
