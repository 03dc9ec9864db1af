"""Who used the CPU while the gate timed something: the machine's busy CPU (/proc/stat), the gate's own
process tree (the gate, a timed `claims-etl run` and its writer processes), the database servers (they
work for the gate and for anyone else), and the rest: other programs' CPU, the load the gate cannot
control. On 2 cores a floor or a run measured while other programs take a core is not the quiet
machine's number; the gate counts only the rounds measured without it (benchmarks/gate.py).

Linux only: /proc. Times are in CPU-seconds; cores = CPU-seconds per wall second.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
SERVERS = frozenset({"postgres", "mariadbd", "mysqld"})


@dataclass(frozen=True)
class Snapshot:
    wall: float
    busy: float  # every core's non-idle CPU-seconds since boot, steal included
    steal: float
    own: float  # this process and its descendants, live and reaped
    servers: float  # database server processes, live and reaped


@dataclass(frozen=True)
class Window:
    seconds: float
    own_cpu: float
    server_cpu: float
    foreign_cpu: float  # busy - own - servers: other programs
    steal_cpu: float
    loadavg: float  # 1-minute load average at the window's end

    @property
    def foreign_cores(self) -> float:
        return self.foreign_cpu / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "own_cpu": round(self.own_cpu, 2),
            "server_cpu": round(self.server_cpu, 2),
            "foreign_cores": round(self.foreign_cores, 2),
            "steal_cpu": round(self.steal_cpu, 2),
            "loadavg": self.loadavg,
        }


def snapshot() -> Snapshot:
    busy, steal = _machine()
    own, servers = _processes()
    return Snapshot(time.perf_counter(), busy, steal, own, servers)


def between(start: Snapshot, end: Snapshot) -> Window:
    own, servers = end.own - start.own, end.servers - start.servers
    busy = end.busy - start.busy
    return Window(
        seconds=end.wall - start.wall,
        own_cpu=own,
        server_cpu=servers,
        foreign_cpu=max(0.0, busy - own - servers),
        steal_cpu=end.steal - start.steal,
        loadavg=round(os.getloadavg()[0], 2),
    )


def _machine() -> tuple[float, float]:
    """(busy, steal) CPU-seconds of all cores from /proc/stat's first line."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]  # guest time is inside user
    return (user + nice + system + irq + softirq + steal) / TICK, steal / TICK


def _processes() -> tuple[float, float]:
    """CPU-seconds of this process tree and of the database servers. A process's reaped children are in
    its parent's cutime/cstime, so a backend or a run process that ends inside a window moves from the
    live sum to its parent's without being lost or counted twice."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _comm, _cpu, _reaped) in table.items():
        children.setdefault(ppid, []).append(pid)
    own = sum(table[pid][2] + table[pid][3] for pid in _tree(os.getpid(), children) if pid in table)
    servers = 0.0
    for ppid, comm, cpu, reaped in table.values():
        if comm in SERVERS:
            parent_is_server = ppid in table and table[ppid][1] in SERVERS
            servers += cpu + (0.0 if parent_is_server else reaped)  # a child server's reaped ones: its parent's
    return own, servers


def _process_table() -> dict[int, tuple[int, str, float, float]]:
    """pid -> (ppid, comm, own CPU-seconds, reaped children's CPU-seconds)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended while listed
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(value) / TICK for value in fields[11:15])
        table[int(stat.parent.name)] = (int(fields[1]), comm, utime + stime, cutime + cstime)
    return table


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children.get(pid, [])]
        pids.extend(frontier)
    return pids
