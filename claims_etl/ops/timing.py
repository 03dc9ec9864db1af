"""The one stage-timing primitive: `with timer.stage("price", rows_in=n) as s: ...; s.rows_out = m`.

Records seconds, rows in/out, peak RSS and the outcome, also when the block raises. The CLI table,
the warehouse tables, `--json` and the benchmarks all read these records. Each stage (each range's,
for the range stages) also logs a `stage started` and a `stage finished` event and, when the `otel`
extra is installed, is one OpenTelemetry span named after the stage.
"""

from __future__ import annotations

import functools
import importlib
import logging
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from claims_etl.errors import ClaimsEtlError

log = logging.getLogger(__name__)


@functools.cache
def _tracer() -> Any:
    """OpenTelemetry's tracer when the `otel` extra is installed, else None: imported on first use,
    so a run without the extra pays one failed import per process. Without an SDK configured by
    the caller the API's tracer is a no-op."""
    try:
        trace = importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None
    return trace.get_tracer("claims_etl")


def span(name: str, **attributes: str | int | float) -> Any:
    """A context manager: an OpenTelemetry span made current (yielding it), or nothing (yielding None)."""
    tracer = _tracer()
    if tracer is None:
        return nullcontext()
    return tracer.start_as_current_span(name, attributes={f"claims_etl.{k}": v for k, v in attributes.items()})


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
    # Wall clock at the stage's start (epoch seconds), comparable across processes and Dask workers:
    # the HTML report's timeline places each range's stages with it.
    started_at: float = 0.0

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
        record = StageRecord(stage=name, rows_in=rows_in, started_at=time.time())
        self.records.append(record)
        if log.isEnabledFor(logging.INFO):
            log.info("stage started", extra={"stage": name, "rows_in": rows_in})
        started = time.perf_counter()
        with span(name) as traced:
            try:
                yield record
            except BaseException as error:
                record.outcome = "failed"
                if isinstance(error, ClaimsEtlError) and error.stage is None:
                    error.stage = name  # for the failure line (ops/logs.failed)
                raise
            else:
                record.outcome = "ok"
            finally:
                record.seconds = time.perf_counter() - started
                record.peak_rss_bytes = peak_rss_bytes()
                _finished(record, traced)


def _finished(record: StageRecord, traced: Any) -> None:
    """The stage's end, logged and set on its span: rows and seconds (no claim data)."""
    fields = {
        "stage": record.stage,
        "outcome": record.outcome,
        "rows_in": record.rows_in,
        "rows_out": record.rows_out,
        "seconds": round(record.seconds, 4),
    }
    if log.isEnabledFor(logging.INFO):
        log.info("stage finished", extra=fields)
    if traced is not None:  # OpenTelemetry attributes in the package's namespace
        traced.set_attributes({f"claims_etl.{name}": value for name, value in fields.items()})
