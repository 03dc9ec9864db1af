"""Extract + validate of one range (issue 19 items 1 and 7): what reading a range's claims and lines
from one snapshot, with V16's checks in the source views, costs.

    CLAIMS_ETL_BENCH_DB=claims_bench python benchmarks/extract.py --claims 100000 --repeats 3

Seeds fresh databases, leases every claim to one run, then times `extract` of the whole claim_id range
(connectorx, `--partitions` connections, as a run reads a range) and `validate` of what it read,
`--repeats` times after a warm-up. Reports median/min/max seconds of each and writes JSON next to the
other results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness
from claims_etl.db.source import source_connection
from claims_etl.engine.leases import plan, take
from claims_etl.reference.store import read_frames
from claims_etl.stages.extract import extract
from claims_etl.stages.validate import validate


def measure(claims: int, repeats: int, seed: int, partitions: int) -> dict[str, Any]:
    harness.fresh_databases("mariadb", claims, seed=seed)
    settings = harness.settings_for("mariadb").model_copy(update={"partitions": partitions})
    run_id = f"bench-extract-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with source_connection(settings) as connection:
        take(connection, settings, run_id, claims_per_range=claims)  # one range: every claim
        (whole,) = plan(connection, run_id)
    low, high = whole.low, whole.high
    reference, run_date = read_frames(settings), settings.effective_run_date()
    seconds: dict[str, list[float]] = {"extract": [], "validate": [], "both": []}
    for repeat in range(repeats + 1):  # round 0 warms up the server's cache and Polars' thread pool
        started = time.perf_counter()
        extracted = extract(settings, run_id, low, high)
        read_at = time.perf_counter()
        validate(extracted.claims, extracted.lines, reference, run_date=run_date)
        done = time.perf_counter()
        if repeat:
            seconds["extract"].append(read_at - started)
            seconds["validate"].append(done - read_at)
            seconds["both"].append(done - started)
    return {
        "claims": extracted.claims.height,
        "lines": extracted.lines.height,
        "partitions": partitions,
        "repeats": repeats,
        **{name: harness.spread(values) for name, values in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine(),
        **measure(args.claims, args.repeats, args.seed, args.partitions),
    }
    harness.RESULTS.mkdir(exist_ok=True)
    output = args.output or harness.RESULTS / f"extract-{args.claims}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
