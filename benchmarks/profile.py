"""Where a run's CPU goes (`make profile`): seeds N claims into fresh databases and runs twice.

1. One `claims-etl run` under py-spy (every thread, and writer processes). It writes
   `<output>/run.txt`, the folded stacks for drilling down (speedscope and inferno read them), and
   prints CPU seconds per stage: each sample is charged to the innermost engine function it is under,
   so a prepare thread's extract and the main thread's write are told apart even when they overlap.
   Native code (connectorx, Polars, turbodbc) is charged to the Python line that called it, but the
   work Polars and connectorx hand to their own thread pools is not sampled, because those are not
   Python threads. Threads waiting on a database are idle and not sampled either.
2. One unprofiled run on fresh seeds again, while psutil is polled: CPU seconds of the run's threads
   by group (Polars' pool and connectorx's threads by their OS names; every other thread, Python's
   among them, as "Python threads"), and of the PostgreSQL and MariaDB server processes. This is the
   whole account that the first part cannot give.

    python benchmarks/profile.py --claims 100000 --target mariadb
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import suppress
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness

# (function, file) of the engine's stage entry points, innermost wins: a frame of `write_tables`
# under `work_locally` is load's write, not the run's bookkeeping.
STAGE_FRAMES: dict[tuple[str, str], str] = {
    ("take", "leases.py"): "lease",
    ("plan", "leases.py"): "lease",
    ("reference_frames", "cache.py"): "reference",
    ("extract", "extract.py"): "extract",
    ("validate", "validate.py"): "validate",
    ("price_keyed", "price.py"): "price",
    ("chunk_tables", "load.py"): "load: to load schema",
    ("write_tables", "write.py"): "load: warehouse insert",
    ("mark_chunk", "marking.py"): "load: source marking",
    ("chunks", "load.py"): "load: chunking",
    ("_loop", "metrics.py"): "monitoring",
    ("_publish", "progress_log.py"): "monitoring",
    ("_finish", "pipeline.py"): "run bookkeeping",
    ("record_start", "run_records.py"): "run bookkeeping",
}


def frame_key(frame: str) -> tuple[str, str]:
    """('write_tables', 'write.py') from py-spy's 'write_tables (claims_etl/stages/write.py:50)'."""
    function, _, where = frame.partition(" (")
    return function, where.rsplit("/", 1)[-1].split(":", 1)[0]


# Leaf frames that block (a lock, a future, a database reply): py-spy sometimes samples them as
# active around a GIL hand-off; they are charged here, not to the stage that waits.
WAITING = {"Condition.wait", "Event.wait", "Connection.wait", "Thread.join", "Thread._wait_for_tstate_lock"}


def stage_of(frames: list[str]) -> str:
    python_frames = [frame for frame in frames if not frame.startswith("process ")]
    if not python_frames:
        return "no Python frame"
    if python_frames[-1].partition(" (")[0] in WAITING:
        return "waiting"
    for frame in reversed(python_frames):
        stage = STAGE_FRAMES.get(frame_key(frame))
        if stage:
            return stage
    if any("importlib._bootstrap" in frame for frame in python_frames):
        return "imports"
    return "other"


def charge(folded: Path) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Samples per stage, and per stage the samples of its innermost frames."""
    samples: Counter[str] = Counter()
    hottest: dict[str, Counter[str]] = defaultdict(Counter)
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        stage = stage_of(frames)
        samples[stage] += int(count)
        hottest[stage][frames[-1]] += int(count)
    return samples, hottest


def record(target: str, rate: int, folded: Path) -> dict[str, object]:
    """One run under py-spy, its folded stacks written to `folded`; returns the run's JSON summary."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]'")
    done = subprocess.run(
        [py_spy, "record", "--rate", str(rate), "--subprocesses", "--format", "raw", "--output", str(folded),
         "--", sys.executable, "-m", "claims_etl", "run", "--json"],
        env=os.environ | harness.env_for(target), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the profiled run failed: {done.stderr.strip()[-2000:]}")
    # py-spy writes its own lines around the run's JSON on the same stdout
    summary, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{") :])
    return dict(summary)


def report(samples: Counter[str], hottest: dict[str, Counter[str]], rate: int, run: dict[str, object]) -> None:
    table = Table(title=f"CPU seconds of the run's Python threads by stage (run: {run['seconds']} s wall)")
    table.add_column("stage")
    table.add_column("CPU s", justify="right")
    table.add_column("hottest frames (CPU s)")
    for stage, count in samples.most_common():
        top = "; ".join(f"{frame} {value / rate:.2f}" for frame, value in hottest[stage].most_common(3))
        table.add_row(stage, f"{count / rate:.2f}", top)
    Console(width=200).print(table)


# OS thread names (comm) of the run's native pools; Python threads are all called "python".
THREAD_GROUPS = {"polars": "Polars pool", "tokio-runtime-w": "connectorx", "r2d2-worker": "connectorx",
                 "async-executor": "connectorx"}  # fmt: skip
SERVERS = {"postgres": "PostgreSQL server", "mariadbd": "MariaDB server"}


class CpuAccount:
    """Polls psutil every 50 ms while a run runs: CPU seconds of the run's threads by group, and of
    the database servers' processes. A thread or backend that exits between two polls loses at most
    its last 50 ms. Each server's count is what it did during the run, its own background work
    included, which is part of the cost of a run on the same cores."""

    def __init__(self, run_pid: int) -> None:
        self.run = psutil.Process(run_pid)
        self.last: dict[str, tuple[str, float]] = {}  # thread or process -> (group, CPU seconds), last seen
        self.start: dict[str, float] = {}
        self._stop = threading.Event()
        self._poll(first=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _thread_group(self, thread_id: int) -> str:
        """psutil gives no thread names: the OS keeps them in /proc."""
        try:
            comm = Path(f"/proc/{self.run.pid}/task/{thread_id}/comm").read_text().strip()
        except OSError:  # the thread has just exited
            comm = ""
        return next((group for prefix, group in THREAD_GROUPS.items() if comm.startswith(prefix)), "Python threads")

    def _seen_now(self) -> dict[str, tuple[str, float]]:
        seen: dict[str, tuple[str, float]] = {}
        with suppress(psutil.Error):  # the run has exited
            for thread in self.run.threads():
                seen[f"thread {thread.id}"] = (self._thread_group(thread.id), thread.user_time + thread.system_time)
        for process in psutil.process_iter(["name", "cpu_times"]):
            group, times = SERVERS.get(process.info["name"]), process.info["cpu_times"]
            if group and times:
                seen[f"process {process.pid}"] = (group, times.user + times.system)
        return seen

    def _poll(self, first: bool = False) -> None:
        for key, (group, seconds) in self._seen_now().items():
            self.last[key] = (group, seconds)
            # A server process that was already running counts from the first poll; the run's
            # threads and the backends it opens count from their birth.
            self.start.setdefault(key, seconds if first and key.startswith("process") else 0.0)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self._poll()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        totals: dict[str, float] = defaultdict(float)
        for key, (group, seconds) in self.last.items():
            totals[group] += seconds - self.start.get(key, 0.0)
        return totals


def account(target: str) -> tuple[dict[str, float], dict[str, object]]:
    """One run without the profiler, its CPU counted by /proc: by thread group and by server."""
    run = subprocess.Popen(
        [sys.executable, "-m", "claims_etl", "run", "--json"],
        env=os.environ | harness.env_for(target), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    cpu = CpuAccount(run.pid)
    out, err = run.communicate()
    totals = cpu.stop()
    if run.returncode != 0:
        raise SystemExit(f"the counted run failed: {err.strip()[-2000:]}")
    return totals, dict(json.loads(out))


def report_accounts(totals: dict[str, float], run: dict[str, object], started: float) -> None:
    wall = time.perf_counter() - started
    table = Table(
        title=f"CPU seconds of one unprofiled run, from its start to its exit ({wall:.2f} s wall, imports included)"
    )
    table.add_column("who")
    table.add_column("CPU s", justify="right")
    for group, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        table.add_row(group, f"{seconds:.2f}")
    table.add_row("all", f"{sum(totals.values()):.2f} of {wall * (os.cpu_count() or 1):.2f} available")
    Console(width=200).print(table)
    print(f"the run's own clock: {run['seconds']} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--target", choices=sorted(harness.TARGETS), default="mariadb")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--output", type=Path, default=Path("profiles"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    harness.fresh_databases(args.target, args.claims, seed=7)
    folded_stacks = args.output / "run.txt"
    run = record(args.target, args.rate, folded_stacks)
    stage_samples, stage_frames = charge(folded_stacks)
    report(stage_samples, stage_frames, args.rate, run)
    print(f"folded stacks: {folded_stacks}")
    harness.fresh_databases(args.target, args.claims, seed=7)
    time.sleep(2)  # let the seeding's backends exit and the servers settle
    started = time.perf_counter()
    accounts, counted_run = account(args.target)
    report_accounts(accounts, counted_run, started)
