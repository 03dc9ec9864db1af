"""End-to-end benchmark (`make bench`). Per target and size, each repeat seeds fresh databases and keeps
them as a template copy, measures the database floor (benchmarks/floor.py: the pending rows read by
binary COPY, the run's output rows written alone by the target's bulk path, turbodbc or COPY for
`postgresql-copy`, and one UPDATE marking the claims, rolled back), then times one `claims-etl run`
process from the template. On `postgresql-copy` the plain peer (benchmarks/peers/polars_adbc.py) runs
from the template too, in its own process, the two sides in alternating order; their warehouse rows and
source statuses must be equal, or the benchmark stops. Every timed side starts after VACUUM ANALYZE and
CHECKPOINT. Reports per-stage median/min/max, claims/s, lines/s, peak RSS, each side's CPU (its own
process tree and the database servers' while it ran: benchmarks/load_meter.py), run/floor (and run/sink
floor, as earlier results did), peer/engine, the COPY target's speed-up over psqlODBC, and the
row-at-a-time baseline's claims/s on a smaller N (ODBC targets). Writes JSON and prints tables.

    python benchmarks/bench.py --claims 100000 1000000 --targets mariadb postgresql --repeats 3
    python benchmarks/bench.py --claims 1000000 --targets mariadb --engines local dask
    python benchmarks/bench.py --claims 100000 --targets postgresql-copy postgresql --baseline-claims 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import floor, harness, load_meter, row_at_a_time
from benchmarks.peers import outputs

PEER_TARGETS = {"postgresql-copy"}  # the peer writes a PostgreSQL warehouse by URL, as this target does
PEER_STEPS = ("reference", "read", "validate", "price", "load", "mark")
FLOOR_PARTS = ("read", "sink", "mark", "total")
# Where a side's CPU went (benchmarks/load_meter.py): its own process tree from start to exit, imports
# included, and the database servers working for it; the rest of the machine should be near 0.
CPU_PARTS = ("seconds", "own_cpu", "server_cpu", "foreign_cores")


def _stage_seconds(run: dict[str, Any], name: str) -> float:
    return float(next(stage["seconds"] for stage in run["stages"] if stage["stage"] == name))


def peer_run(target: str) -> dict[str, Any]:
    """The plain peer (benchmarks/peers/polars_adbc.py) once, in its own process as a run is."""
    script = Path(__file__).resolve().parent / "peers" / "polars_adbc.py"
    url = harness.TARGETS[target]
    done = subprocess.run(
        [sys.executable, str(script), "--source-url", harness.SOURCE_URL, "--target-url", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the peer failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def sides_once(target: str, engine: str, with_peer: bool, peer_first: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine's run and (with_peer) the peer's on the same data: each from the template copy, the
    database settled first; their warehouse rows and source statuses checked equal, loudly."""
    order = ["peer", "engine"] if peer_first else ["engine", "peer"]
    done: dict[str, dict[str, Any]] = {}
    left: dict[str, dict[str, Any]] = {}
    for side in order if with_peer else ["engine"]:
        harness.restore_template()
        harness.settle()
        before = load_meter.snapshot()
        done[side] = peer_run(target) if side == "peer" else harness.timed_run(target, engine)
        done[side]["cpu"] = load_meter.between(before, load_meter.snapshot()).as_dict()
        if with_peer:
            left[side] = outputs.snapshot(harness.SOURCE_URL)
    if with_peer and (differ := outputs.differences(left["engine"], left["peer"])):
        raise SystemExit("the peer's outputs differ from the engine's (engine first):\n" + "\n".join(differ))
    return done["engine"], done.get("peer", {})


def measure(
    target: str, claims: int, repeats: int, engine: str = "local", history: int = 0, peer: bool = True
) -> dict[str, Any]:
    """Per repeat: fresh seeded databases kept as a template; the database floor's parts; then the
    engine's run and, for a PostgreSQL warehouse by URL, the peer's, each from the template, in
    alternating order."""
    with_peer = peer and target in PEER_TARGETS
    runs, peers, floors, lines, firsts = [], [], [], 0, []
    for repeat in range(repeats):
        lines = harness.fresh_databases(target, claims, seed=100 + repeat, history=history)
        harness.save_template()
        floors.append(floor.measure(target))
        if floors[-1]["marked"] != claims:
            raise SystemExit(f"the floor's UPDATE marked {floors[-1]['marked']:,} claims, not the {claims:,} pending")
        peer_first = with_peer and repeat % 2 == 1
        firsts.append("peer" if peer_first else "engine")
        run, peer_result = sides_once(target, engine, with_peer, peer_first)
        runs.append(run)
        peers.append(peer_result)
    harness.drop_template()
    names = [stage["stage"] for stage in runs[0]["stages"]]
    totals = [run["seconds"] for run in runs]
    median_total = statistics.median(totals)
    result = {
        "target": target,
        "engine": engine,
        "claims": claims,
        "lines": lines,
        "history_claims": history,
        "repeats": repeats,
        "stages": {name: harness.spread([_stage_seconds(run, name) for run in runs]) for name in names},
        "seconds": harness.spread(totals),
        # the sink floor alone and the run over it: the fields of earlier result files
        "sink_floor_seconds": harness.spread([f["sink"] for f in floors]),
        "ratio_to_floor": statistics.median(t / f["sink"] for t, f in zip(totals, floors, strict=True)),
        # the database floor (benchmarks/floor.py): read + sink + mark
        "database_floor": {part: harness.spread([f[part] for f in floors]) for part in FLOOR_PARTS},
        "ratio_to_database_floor": statistics.median(t / f["total"] for t, f in zip(totals, floors, strict=True)),
        "claims_per_second": claims / median_total,
        "lines_per_second": lines / median_total,
        "peak_rss_bytes": max(max(s["peak_rss_bytes"] for s in run["stages"]) for run in runs),
        "cpu": _cpu(runs),
        "ranges": [run.get("ranges", []) for run in runs],  # per range: worker, attempt, seconds
        # each repeat's own numbers, for paired comparisons: the run's seconds, the floor's parts, the peer's steps
        "per_repeat": [
            {"seconds": t, "floor": f} | ({"peer": p["seconds"], "first": first} if with_peer else {})
            for t, f, p, first in zip(totals, floors, peers, firsts, strict=True)
        ],
    }
    if with_peer:
        peer_totals = [p["seconds"]["total"] for p in peers]
        result["peer"] = {
            "name": "polars_adbc",
            "seconds": harness.spread(peer_totals),
            "steps": {step: harness.spread([p["seconds"][step] for p in peers]) for step in PEER_STEPS},
            "peak_rss_bytes": max(p["peak_rss_bytes"] for p in peers),
            "cpu": _cpu(peers),
            "first": firsts,  # which side ran first in each repeat
            "outputs_equal": True,  # checked after every repeat; a difference stops the benchmark
        }
        # > 1: the engine is faster. Per repeat (same data), then the median.
        result["peer_over_engine"] = statistics.median(p / t for p, t in zip(peer_totals, totals, strict=True))
    return result


def _cpu(sides: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Medians (and spread) of each side's CPU window: whole process wall seconds, its own CPU, the
    database servers' CPU, and other programs' cores (noise)."""
    return {part: harness.spread([side["cpu"][part] for side in sides]) for part in CPU_PARTS}


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


def _cpu_rows(side: str, cpu: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    return [
        (f"{side} process wall", cpu["seconds"]),
        (f"{side} process CPU-s", cpu["own_cpu"]),
        (f"{side} servers CPU-s", cpu["server_cpu"]),
    ]


def table(result: dict[str, Any]) -> Table:
    title = f"{result['target']} ({result['engine']}): {result['claims']:,} claims, {result['lines']:,} lines"
    if result.get("history_claims"):
        title += f" (after {result['history_claims']:,} processed)"
    out = Table(title=f"{title}, median of {result['repeats']}")
    for column in ("stage", "median s", "min s", "max s"):
        out.add_column(column, justify="left" if column == "stage" else "right")
    peer = result.get("peer")
    rows = [
        *result["stages"].items(),
        ("total", result["seconds"]),
        *((f"peer {step}", stats) for step, stats in (peer["steps"].items() if peer else [])),
        *([("peer total", peer["seconds"])] if peer else []),
        *((f"floor {part}", stats) for part, stats in result["database_floor"].items()),
        *_cpu_rows("engine", result["cpu"]),
        *(_cpu_rows("peer", peer["cpu"]) if peer else []),
    ]
    for name, stats in rows:
        out.add_row(name, f"{stats['median']:.3f}", f"{stats['min']:.3f}", f"{stats['max']:.3f}")
    out.caption = (
        f"{result['claims_per_second']:,.0f} claims/s, {result['lines_per_second']:,.0f} lines/s, "
        f"run/floor {result['ratio_to_database_floor']:.2f}x (run/sink floor {result['ratio_to_floor']:.2f}x), "
        + (f"peer/engine {result['peer_over_engine']:.2f}x (outputs equal), " if peer else "")
        + f"peak RSS {result['peak_rss_bytes'] / 2**20:,.0f} MiB"
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
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the plain peer (benchmarks/peers/polars_adbc.py) beside the engine on postgresql-copy",
    )
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
                result = measure(target, claims, args.repeats, engine, args.history, args.peer)
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
