"""End-to-end benchmark: seed N claims into fresh databases, run `claims-etl run --json` several
times per target (each run in its own process, so peak RSS is the run's own), and report per-stage
median/min/max seconds, claims/s and lines/s. Writes a JSON file and prints a table.

    python benchmarks/bench.py --claims 100000 --targets mariadb postgresql --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

BENCH_DB = "claims_bench"
PG_ADMIN = os.environ.get("CLAIMS_ETL_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCE_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
TARGETS = {
    "mariadb": f"Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Database={BENCH_DB};User=root;Password=;",
    "postgresql": (
        f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={BENCH_DB};Uid=postgres;"
        "UseServerSidePrepare=0;BatchSize=100;CommLog=0"
    ),
}
RESULTS = Path(__file__).parent / "results"


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "claims_etl", *args], env=os.environ | env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"claims-etl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def fresh_databases() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    subprocess.run(
        ["mysql", "-h", "127.0.0.1", "-uroot", "-e", f"DROP DATABASE IF EXISTS {BENCH_DB}; CREATE DATABASE {BENCH_DB}"],
        check=True,
    )


def one_run(target: str, claims: int, seed: int) -> dict[str, Any]:
    """Fresh databases, N seeded claims, one timed run (seeding is not timed)."""
    fresh_databases()
    env = {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_TARGET_ODBC": TARGETS[target]}
    _cli(env, "db", "init")
    _cli(env, "seed", "--claims", str(claims), "--seed", str(seed))
    lines = int(
        psycopg.connect(SOURCE_URL).execute("SELECT count(*) FROM staging.claim_lines").fetchone()[0]  # type: ignore[index]
    )
    started = time.perf_counter()
    summary: dict[str, Any] = json.loads(_cli(env, "run", "--json"))
    summary["wall_seconds"] = time.perf_counter() - started
    summary["lines"] = lines
    return summary


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    stages = [stage["stage"] for stage in runs[0]["stages"]]
    per_stage = {}
    for name in stages:
        seconds = [next(s["seconds"] for s in run["stages"] if s["stage"] == name) for run in runs]
        per_stage[name] = {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}
    totals = [run["seconds"] for run in runs]
    median_total = statistics.median(totals)
    return {
        "claims": runs[0]["claims_read"],
        "lines": runs[0]["lines"],
        "repeats": len(runs),
        "stages": per_stage,
        "seconds": {"median": median_total, "min": min(totals), "max": max(totals)},
        "claims_per_second": runs[0]["claims_read"] / median_total,
        "lines_per_second": runs[0]["lines"] / median_total,
        "peak_rss_bytes": max(max(s["peak_rss_bytes"] for s in run["stages"]) for run in runs),
        "wall_seconds_median": statistics.median(run["wall_seconds"] for run in runs),
    }


def table(target: str, result: dict[str, Any]) -> Table:
    out = Table(
        title=f"{target}: {result['claims']:,} claims, {result['lines']:,} lines, median of {result['repeats']}"
    )
    for column in ("stage", "median s", "min s", "max s"):
        out.add_column(column, justify="left" if column == "stage" else "right")
    for name, stats in result["stages"].items():
        out.add_row(name, f"{stats['median']:.3f}", f"{stats['min']:.3f}", f"{stats['max']:.3f}")
    out.add_section()
    total = result["seconds"]
    out.add_row("total", f"{total['median']:.3f}", f"{total['min']:.3f}", f"{total['max']:.3f}")
    out.caption = (
        f"{result['claims_per_second']:,.0f} claims/s, {result['lines_per_second']:,.0f} lines/s, "
        f"peak RSS {result['peak_rss_bytes'] / 2**20:,.0f} MiB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, nargs="+", default=[100_000])
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": [],
    }
    for claims in args.claims:
        for target in args.targets:
            runs = [one_run(target, claims, seed=100 + repeat) for repeat in range(args.repeats)]
            result = {"target": target} | summarize(runs)
            report["results"].append(result)
            console.print(table(target, result))
    output = args.output or RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {output}")


if __name__ == "__main__":
    main()
