"""Cold start: how long `claims-etl --help` and `claims-etl --version` take from process start to exit
(the target is 0.3 s), and how long `claims-etl run` takes from process start to its first database
connection.

    python benchmarks/cold_start.py --repeats 5 [--importtime] [--output FILE]

The source and the warehouse are reached through loopback TCP relays started here, which forward to
the real servers and note when the run first connects to either: nothing a run does before that
moment is database work (imports, settings, the rules file), so it is the process's cold start. The
run itself goes on against the real databases (with nothing pending it ends at once). `--importtime`
also prints the 15 slowest imports of that command, from `python -X importtime`. Each figure is the
median of `--repeats` starts after one uncounted start; the report is printed and written to
benchmarks/results/ (or `--output`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness


class Relay:
    """A loopback TCP relay to `upstream`, remembering when its first client connected."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.first_connect: float | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if self.first_connect is None:
                self.first_connect = time.perf_counter()
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        self.first_connect = None


def relayed_env(source: Relay, target: Relay) -> dict[str, str]:
    env = os.environ | {
        "CLAIMS_ETL_SOURCE_URL": f"postgresql://postgres@127.0.0.1:{source.port}/{harness.BENCH_DB}",
        "CLAIMS_ETL_TARGET_ODBC": harness.TARGETS["mariadb"].replace("Port=3306", f"Port={target.port}"),
    }
    env.pop("CLAIMS_ETL_TARGET_URL", None)
    return env


def one_start(source: Relay, target: Relay) -> float:
    """Seconds from just before the process starts to its first connection through either relay."""
    env = relayed_env(source, target)
    source.reset()
    target.reset()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "claims_etl", "run", "--json"], env=env, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"claims-etl run failed: {done.stderr.decode(errors='replace').strip()}")
    firsts = [relay.first_connect for relay in (source, target) if relay.first_connect is not None]
    return min(firsts) - started


def one_answer(*args: str) -> float:
    """Seconds from just before `claims-etl ARGS` starts to its exit (no database involved)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "claims_etl", *args], capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"claims-etl {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return seconds


def answers(args: list[str], repeats: int) -> dict[str, object]:
    """`claims-etl ARGS` timed `repeats` times after one uncounted start (which warms the file cache)."""
    one_answer(*args)
    seconds = [one_answer(*args) for _ in range(repeats)]
    return {"seconds": harness.spread(seconds), "runs": seconds}


def slowest_imports(env: dict[str, str], count: int) -> list[tuple[str, float]]:
    """The `count` imports with the largest cumulative time in a whole `claims-etl run`."""
    command = [sys.executable, "-X", "importtime", "-m", "claims_etl", "run", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    report: dict[str, object] = {"machine": harness.machine()}
    for name, command in (("help", ["--help"]), ("version", ["--version"])):
        report[name] = answers(command, args.repeats)
    harness.fresh_databases("mariadb", 0, seed=1)
    source, target = Relay(("127.0.0.1", 5432)), Relay(("127.0.0.1", 3306))
    one_start(source, target)  # the first start warms the OS file cache: not counted
    seconds = [one_start(source, target) for _ in range(args.repeats)]
    report |= {"first_connection_seconds": harness.spread(seconds), "runs": seconds}
    if args.importtime:
        report["slowest_imports"] = slowest_imports(relayed_env(source, target), 15)
    output = args.output or harness.RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-cold-start.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
