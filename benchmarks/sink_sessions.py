"""Would a second warehouse session in a thread shorten a run's writes by COPY? (issue 32, the next
step). The run's own chunks of 100k seeded claims, written by `write_tables`, one chunk per
transaction: by one session, or by two sessions in two threads taking chunks in turn; rounds
interleaved, the warehouse emptied before each. Prints seconds and the client's CPU-seconds.

    python benchmarks/sink_sessions.py --target postgresql-copy --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness
from claims_etl.reference.store import read_frames
from claims_etl.stages import load
from claims_etl.stages.extract import read_pending
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.stages.write import write_tables
from claims_etl.targets import Target, connect_target


def run_chunks(target: str) -> list[load.ChunkTables]:
    """The warehouse tables of every chunk a run of the seeded claims writes (no fence: as the sink floor)."""
    settings = harness.settings_for(target)
    pending = read_pending(settings)
    frames = read_frames(settings)
    validated = validate(pending.claims, pending.lines, frames, run_date=settings.effective_run_date())
    priced = price(validated.accepted_claims, validated.accepted_lines, frames)
    at = datetime.now(UTC)
    spans = load.chunks(validated.rejected, priced, settings.load_chunk_claims)
    return [load.chunk_tables(chunk, "sessions", at) for chunk in spans]


def in_turn(sessions: list[Target], chunks: list[load.ChunkTables]) -> None:
    """Each session in a thread of its own takes the next chunk until none is left."""
    lock, todo = threading.Lock(), list(chunks)

    def write_some(session: Target) -> None:
        while True:
            with lock:
                if not todo:
                    return
                chunk = todo.pop(0)
            write_tables(session, chunk, lambda *_: None)

    with ThreadPoolExecutor(len(sessions)) as pool:
        list(pool.map(write_some, sessions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(harness.URL_TARGETS), default="postgresql-copy")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    harness.fresh_databases(args.target, 100_000, seed=100)
    chunks = run_chunks(args.target)
    settings = harness.settings_for(args.target)
    sessions = [connect_target(settings), connect_target(settings)]
    ways: dict[str, Callable[[], None]] = {
        "one session": lambda: in_turn(sessions[:1], chunks),
        "two sessions in threads": lambda: in_turn(sessions, chunks),
    }
    measured: dict[str, list[list[float]]] = {name: [] for name in ways}
    process = psutil.Process()
    for round_number in range(args.rounds):
        for name in list(ways)[:: 1 if round_number % 2 == 0 else -1]:
            harness.empty_warehouse(sessions[0])
            before, started = process.cpu_times(), time.perf_counter()
            ways[name]()
            seconds, after = time.perf_counter() - started, process.cpu_times()
            cpu = after.user + after.system - before.user - before.system
            measured[name].append([round(seconds, 3), round(cpu, 3)])
    summary: dict[str, Any] = {
        "machine": harness.machine(),
        "target": args.target,
        "chunks": len(chunks),
        "rounds": measured,
        "median_seconds": {name: statistics.median(r[0] for r in runs) for name, runs in measured.items()},
    }
    for session in sessions:
        session.close()
    print(json.dumps(summary["median_seconds"]))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
