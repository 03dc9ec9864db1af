"""End-to-end benchmark (`make bench`). Per target and size, each repeat seeds fresh databases, measures
the sink floor (the target's bulk path inserting the same output rows alone: turbodbc, or COPY for
`postgresql-copy`), then times one `claims-etl run` process. Reports per-stage median/min/max,
claims/s, lines/s, peak RSS, the run/floor ratio, the COPY target's speed-up over psqlODBC, and the
row-at-a-time baseline's claims/s on a smaller N (ODBC targets). Writes JSON and prints tables.

    python benchmarks/bench.py --claims 100000 1000000 --targets mariadb postgresql --repeats 3
    python benchmarks/bench.py --claims 1000000 --targets mariadb --engines local dask
    python benchmarks/bench.py --claims 100000 --targets postgresql-copy postgresql --baseline-claims 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness, row_at_a_time


def _stage_seconds(run: dict[str, Any], name: str) -> float:
    return float(next(stage["seconds"] for stage in run["stages"] if stage["stage"] == name))


def measure(target: str, claims: int, repeats: int, engine: str = "local", history: int = 0) -> dict[str, Any]:
    runs, floors, lines = [], [], 0
    for repeat in range(repeats):
        lines = harness.fresh_databases(target, claims, seed=100 + repeat, history=history)
        floors.append(harness.sink_floor(target))
        runs.append(harness.timed_run(target, engine))
    names = [stage["stage"] for stage in runs[0]["stages"]]
    totals = [run["seconds"] for run in runs]
    median_total = statistics.median(totals)
    return {
        "target": target,
        "engine": engine,
        "claims": claims,
        "lines": lines,
        "history_claims": history,
        "repeats": repeats,
        "stages": {name: harness.spread([_stage_seconds(run, name) for run in runs]) for name in names},
        "seconds": harness.spread(totals),
        "sink_floor_seconds": harness.spread(floors),
        "ratio_to_floor": statistics.median(t / f for t, f in zip(totals, floors, strict=True)),
        "claims_per_second": claims / median_total,
        "lines_per_second": lines / median_total,
        "peak_rss_bytes": max(max(s["peak_rss_bytes"] for s in run["stages"]) for run in runs),
        "ranges": [run.get("ranges", []) for run in runs],  # per range: worker, attempt, seconds
    }


def copy_speedups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size and engine measured on both: psqlODBC's median run seconds over the COPY target's."""
    by_key = {(r["target"], r["claims"], r["engine"]): r for r in results}
    return [
        {"claims": claims, "engine": engine, "speedup": odbc["seconds"]["median"] / copy["seconds"]["median"]}
        for (target, claims, engine), copy in by_key.items()
        if target == "postgresql-copy" and (odbc := by_key.get(("postgresql", claims, engine)))
    ]


def baseline(target: str, claims: int) -> dict[str, Any]:
    harness.fresh_databases(target, claims, seed=99)
    return {"target": target} | row_at_a_time.run(harness.settings_for(target), limit=claims)


def table(result: dict[str, Any]) -> Table:
    title = f"{result['target']} ({result['engine']}): {result['claims']:,} claims, {result['lines']:,} lines"
    if result.get("history_claims"):
        title += f" (after {result['history_claims']:,} processed)"
    out = Table(title=f"{title}, median of {result['repeats']}")
    for column in ("stage", "median s", "min s", "max s"):
        out.add_column(column, justify="left" if column == "stage" else "right")
    for name, stats in [
        *result["stages"].items(),
        ("total", result["seconds"]),
        ("sink floor", result["sink_floor_seconds"]),
    ]:
        out.add_row(name, f"{stats['median']:.3f}", f"{stats['min']:.3f}", f"{stats['max']:.3f}")
    out.caption = (
        f"{result['claims_per_second']:,.0f} claims/s, {result['lines_per_second']:,.0f} lines/s, "
        f"run/floor {result['ratio_to_floor']:.2f}x, peak RSS {result['peak_rss_bytes'] / 2**20:,.0f} MiB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--targets", nargs="+", choices=sorted(harness.TARGETS), default=["mariadb", "postgresql-copy", "postgresql"]
    )
    parser.add_argument("--engines", nargs="+", choices=["local", "dask"], default=["local"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-claims", type=int, default=2_000, help="N for the row-at-a-time baseline (0: skip)")
    parser.add_argument("--history", type=int, default=0, help="processed claims already in the source")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    report: dict[str, Any] = {
        "machine": harness.machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": [],
        "row_at_a_time": [],
    }
    for claims in args.claims:
        for target in args.targets:
            for engine in args.engines:
                result = measure(target, claims, args.repeats, engine, args.history)
                report["results"].append(result)
                console.print(table(result))
    report["copy_speedup"] = copy_speedups(report["results"])
    for speedup in report["copy_speedup"]:
        console.print(
            f"{speedup['claims']:,} claims ({speedup['engine']}): PostgreSQL by COPY {speedup['speedup']:.1f}x "
            "faster than over psqlODBC (median run seconds)"
        )
    if args.baseline_claims:
        for target in [t for t in args.targets if t not in harness.URL_TARGETS]:  # the baseline is ODBC row by row
            base = baseline(target, args.baseline_claims)
            ours = max((r["claims_per_second"] for r in report["results"] if r["target"] == target), default=0.0)
            base["engine_speedup"] = ours / base["claims_per_second"] if base["claims_per_second"] else None
            report["row_at_a_time"].append(base)
            console.print(
                f"row-at-a-time baseline, {target}: {base['claims']:,} claims, "
                f"{base['claims_per_second']:,.0f} claims/s; engine {base['engine_speedup']:,.0f}x faster"
            )
    output = args.output or harness.RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {output}")


if __name__ == "__main__":
    main()
