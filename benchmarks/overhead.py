"""Monitoring overhead: the same claims run with monitoring on and off, alternating, on one machine.

    python benchmarks/overhead.py --claims 1000000 --pairs 2
Each trial resets the claims to pending and empties the warehouse (cheaper than seeding anew), then
times `claims-etl run` with CLAIMS_ETL_MONITORING=true or false. The monitored side also logs JSON lines
(a stage event per stage and range) and writes the Prometheus textfile; the other logs console lines at
WARNING and writes none. Reports the median of each side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness
from claims_etl.targets import connect_target


def reset(target: str) -> None:
    with psycopg.connect(harness.SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET status = 'pending', run_id = NULL, processed_at = NULL")
        connection.execute("VACUUM ANALYZE staging.claims")
    sink = connect_target(harness.settings_for(target))
    harness.empty_warehouse(sink)
    sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--target", default="mariadb", choices=sorted(harness.TARGETS))
    args = parser.parse_args()
    harness.fresh_databases(args.target, args.claims, seed=5)
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    textfile = Path(tempfile.mkdtemp(prefix="claims-etl-overhead-")) / "claims_etl.prom"
    sides = {
        "on": {
            "CLAIMS_ETL_MONITORING": "true",
            "CLAIMS_ETL_LOG_FORMAT": "json",
            "CLAIMS_ETL_METRICS_TEXTFILE": str(textfile),
        },
        "off": {"CLAIMS_ETL_MONITORING": "false", "CLAIMS_ETL_LOG_FORMAT": "console"},
    }
    for pair in range(args.pairs):
        for side in ("on", "off") if pair % 2 == 0 else ("off", "on"):
            reset(args.target)
            env = harness.env_for(args.target) | sides[side]
            summary = json.loads(harness.cli(env, "run", "--json"))
            seconds[side].append(summary["seconds"])
    on, off = statistics.median(seconds["on"]), statistics.median(seconds["off"])
    print(json.dumps({"claims": args.claims, "seconds": seconds, "median_on": on, "median_off": off,
                      "overhead": on / off - 1}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
