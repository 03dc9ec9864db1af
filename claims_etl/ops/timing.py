"""The one stage-timing primitive: `with timer.stage("price", rows_in=n) as s: ...; s.rows_out = m`.

Records seconds, rows in/out, peak RSS and the outcome, also when the block raises. The CLI table,
the warehouse tables, `--json` and the benchmarks all read these records.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far. On Linux, VmHWM of /proc/self/status: ru_maxrss
    survives exec, so a `claims-etl run` started by a big parent (the benchmark, after its sink floor)
    would report the parent's peak as its own."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@dataclass
class StageRecord:
    stage: str
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    outcome: str = "running"

    @property
    def rows_per_second(self) -> float:
        return self.rows_out / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_per_second": round(self.rows_per_second, 1)}


@dataclass
class StageTimer:
    """Collects one record per stage, in the order the stages ran."""

    records: list[StageRecord] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, rows_in: int = 0) -> Iterator[StageRecord]:
        record = StageRecord(stage=name, rows_in=rows_in)
        self.records.append(record)
        started = time.perf_counter()
        try:
            yield record
        except BaseException:
            record.outcome = "failed"
            raise
        else:
            record.outcome = "ok"
        finally:
            record.seconds = time.perf_counter() - started
            record.peak_rss_bytes = peak_rss_bytes()
