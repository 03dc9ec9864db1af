"""PostgreSQL CPU of each source statement a run sends, measured on the server session itself.

`make profile` counts the whole server's CPU over a run; this says which statement it goes to. On fresh
databases with N seeded claims (analyzed, as a nightly source is), one session opened as the engine
opens its own (`db.source.connect_source`: its timeouts and `jit=off`) runs each statement `--repeats`
times and reads that backend's CPU seconds (psutil) before and after. Writes are rolled back (and the
tables vacuumed) so every repeat sees the same rows.
Parallel query workers are other processes and are not counted: check with EXPLAIN that the plans at the
size measured are serial (they are at the default size; a larger seed may gather workers).

- preflight: the unpriceable-claims check before leasing (source/unpriceable_years.sql);
- lease: the range leases of every pending claim (leases/lease_pending.sql);
- read: one range's claims and lines (extract/range.sql) over the whole seed, sent as binary COPY,
  the protocol connectorx reads (its two partitions split this work, they do not add to it);
- mark: one load chunk's status update (source/mark_claims.sql, its priced-claims statement) of
  `--chunk` claims, and the same per 100,000 claims.

    python benchmarks/source_cpu.py --claims 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import RESULTS, fresh_databases, machine, settings_for, spread
from claims_etl.db import sql
from claims_etl.db.source import connect_source

RUN_ID = "source-cpu-bench"


def measure(
    session: psycopg.Connection[Any],
    statement: Callable[[], object],
    repeats: int,
    prepare: Callable[[], object],
) -> dict[str, Any]:
    """Backend CPU and wall seconds of `statement` (after `prepare`, untimed, in the same transaction),
    each repeat rolled back and the tables it wrote vacuumed."""
    backend = psutil.Process(session.info.backend_pid)
    cpu, wall = [], []
    for _ in range(repeats):
        prepare()
        before, started = backend.cpu_times(), time.perf_counter()
        statement()
        after = backend.cpu_times()
        wall.append(time.perf_counter() - started)
        cpu.append(after.user + after.system - before.user - before.system)
        session.rollback()
        session.autocommit = True
        session.execute("VACUUM staging.claims, staging.range_leases")
        session.autocommit = False
    return {"cpu_seconds": spread(cpu), "wall_seconds": spread(wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="claims per marking (LOAD_CHUNK_CLAIMS)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    fresh_databases("postgresql-copy", args.claims, seed=11)
    with connect_source(settings_for("postgresql-copy"), autocommit=False) as session:
        low, high = session.execute("SELECT min(claim_id), max(claim_id) FROM staging.claims").fetchone()  # type: ignore[misc]
        lease = {
            "run_id": RUN_ID,
            "batch_id": None,
            "limit": None,
            "skip_unpriceable": False,
            "first_range_claims": args.claims,
            "claims_per_range": args.claims,
        }
        chunk = list(range(low, low + args.chunk))
        marking = {
            "run_id": RUN_ID,
            "processed_at": datetime.now(UTC),
            "priced_ids": chunk,
            "low": chunk[0],
            "high": chunk[-1],
        }
        read = f"COPY ({sql.render('extract/range', run_id=RUN_ID, low=low, high=high)}) TO STDOUT (FORMAT binary)"

        def lease_everything() -> None:  # the range read reads what a lease of this run holds
            session.execute("INSERT INTO staging.range_leases (run_id, low, high, claims) VALUES (%s, %s, %s, %s)",
                            [RUN_ID, low, high, args.claims])  # fmt: skip

        def read_range() -> None:
            with session.cursor().copy(read) as copy:
                for _block in copy:
                    pass

        def mark_chunk() -> None:
            marked = session.execute(sql.statements("source/mark_claims")[1], marking).rowcount
            if marked != args.chunk:
                raise SystemExit(f"the marking updated {marked} claims, not {args.chunk}: ids are not consecutive")

        def nothing() -> None:
            pass

        # Each statement, what it needs first (untimed), and how many claims one execution covers.
        statements: dict[str, tuple[Callable[[], object], Callable[[], object], int]] = {
            "preflight": (
                lambda: session.execute(sql.load("source/unpriceable_years"), {"batch_id": None}).fetchall(),
                nothing,
                args.claims,
            ),
            "lease": (
                lambda: session.execute(sql.load("leases/lease_pending"), lease).fetchall(),
                nothing,
                args.claims,
            ),
            "read": (read_range, lease_everything, args.claims),
            "mark": (mark_chunk, nothing, args.chunk),
        }
        results = {
            name: measure(session, statement, args.repeats, prepare)
            for name, (statement, prepare, _claims) in statements.items()
        }
    summary = {
        name: round(results[name]["cpu_seconds"]["median"] * 100_000 / claims, 3)
        for name, (_statement, _prepare, claims) in statements.items()
    }
    for name, result in results.items():
        cpu, wall = result["cpu_seconds"], result["wall_seconds"]
        print(f"{name:10s} CPU {cpu['median']:.3f} s ({cpu['min']:.3f}-{cpu['max']:.3f}), wall {wall['median']:.3f} s")
    print(
        f"per 100,000 claims (mark: {100_000 // args.chunk} chunks): {summary}, all {sum(summary.values()):.3f} CPU-s"
    )
    document = {
        "benchmark": "source_cpu",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "claims": args.claims,
        "chunk": args.chunk,
        "repeats": args.repeats,
        "statements": results,
        "cpu_seconds_per_100k_claims": summary,
    }
    output = args.output or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-source-cpu.json"
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
