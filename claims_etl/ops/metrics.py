"""Run metrics (Prometheus names) and resource sampling with psutil (alerts: ops/alerts.py).

Every number here is derived from what the run recorded. One list of samples per run is both
what `warehouse.etl_run_metrics` stores and what the Prometheus textfile holds (`write_textfile`,
prometheus_client's registry and atomic writer: HELP and TYPE on each metric, values exact).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claims_etl.ops.timing import StageRecord

# prometheus_client is imported where the textfile is written or read, at a run's end, not at its start
# (docs/performance.md, cold start).
if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

LAST_SUCCESS = "claims_etl_last_success_timestamp_seconds"
# The HELP line of every metric, named as Prometheus' naming guide asks: base units as suffixes
# (`_seconds`, `_bytes`), shares as 0..1 `_ratio`s, `_total` left to counters. All gauges (the textfile
# describes the last run) but the chunk latency, a summary (`quantile` labels, `_sum` and `_count`).
HELP = {
    "claims_etl_run_success": "1 if the last run succeeded, 0 if it failed",
    LAST_SUCCESS: "Unix time the last successful run finished (a failed run keeps the previous one's)",
    "claims_etl_run_claims": "Claims of the last run by outcome (recovered claims are also priced or rejected)",
    "claims_etl_claims_read": "Claims the last run read",
    "claims_etl_run_seconds": "Wall time of the last run, start to end",
    "claims_etl_claims_per_second": "Claims read per second of wall time (a failed run: claims committed)",
    "claims_etl_rejected_ratio": "Share of the claims read that were rejected (0..1)",
    "claims_etl_cpu_usage_max_ratio": "Highest system CPU use sampled during the run (0..1 of all cores)",
    "claims_etl_cpu_usage_mean_ratio": "Mean system CPU use sampled during the run (0..1 of all cores)",
    "claims_etl_memory_usage_max_ratio": "Highest system memory use sampled during the run (0..1)",
    "claims_etl_rss_max_bytes": "Highest resident set size of the run's process",
    "claims_etl_stage_seconds": "Seconds per stage (range stages summed over ranges; worker-seconds on Dask)",
    "claims_etl_stage_rows": "Rows out of each stage",
    "claims_etl_stage_rows_per_second": "Rows out per second of each stage",
    "claims_etl_chunk_seconds": "Load chunk latency: the 0.5, 0.95 and 0.99 quantiles, the sum and the count",
    "claims_etl_cache_hit_ratio": "Reference cache hits over lookups (0..1)",
    "claims_etl_cache_seconds": "Seconds spent getting the reference frames",
    "claims_etl_rejections": "Claims rejected by each rule (a claim counts once per rule it broke)",
    "claims_etl_warnings": "Priced claims warned by each warn-severity rule",
    "claims_etl_connections_used": "Database sessions the run used",
    "claims_etl_connections_configured": "Database sessions granted to the ETL (the alert's limit)",
    "claims_etl_range_stage_seconds": "Seconds per stage of each claim_id range",
}
SUMMARIES = ("claims_etl_chunk_seconds",)
# Per-run series (a range, its worker process, its attempt): kept with the run in etl_run_metrics, left
# out of the textfile, where each run would start new series that never end.
PER_RUN_SERIES = ("claims_etl_range_stage_seconds",)


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def registry(samples: Sequence[Sample]) -> CollectorRegistry:
    """The samples as prometheus_client metric families, one per name (a summary's `_sum` and `_count`
    samples in its family)."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 (see the module's imports)
    from prometheus_client.core import Metric  # noqa: PLC0415

    families: dict[str, Metric] = {}
    for sample in samples:
        name = _family(sample.name)
        if name not in families:
            families[name] = Metric(name, HELP[name], "summary" if name in SUMMARIES else "gauge")
        families[name].add_sample(sample.name, sample.labels, sample.value)
    collected = CollectorRegistry(auto_describe=False)
    collected.register(_Collected(list(families.values())))
    return collected


def _family(name: str) -> str:
    """The metric a sample belongs to: a summary's `_sum` and `_count` samples are its own."""
    base = name.removesuffix("_sum").removesuffix("_count")
    return base if base in SUMMARIES else name


class _Collected:
    """A prometheus_client collector of metric families made once (the run is over)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def write_textfile(path: str, samples: Sequence[Sample]) -> None:
    """Write the node_exporter textfile atomically (a temporary file renamed over it): the collector
    never reads half a file."""
    from prometheus_client import write_to_textfile  # noqa: PLC0415 (see the module's imports)

    write_to_textfile(path, registry([sample for sample in samples if sample.name not in PER_RUN_SERIES]))


def previous_value(path: str, name: str) -> float | None:
    """A metric's value in the textfile as it is (None if absent or unreadable): what a failed run
    that cannot reach the run log keeps as its last success time."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415 (see the module's imports)

    try:
        text = Path(path).read_text(encoding="utf-8")
        families = list(text_string_to_metric_families(text))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    values = [sample.value for family in families for sample in family.samples if sample.name == name]
    return values[0] if values else None


class ResourceSampler:
    """Samples system CPU %, memory % and this process's RSS on a background thread while a run works."""

    def __init__(self, interval: float = 1.0, *, enabled: bool = True) -> None:
        self.interval, self.enabled = interval, enabled
        self.cpu: list[float] = []
        self.memory: list[float] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="resource-sampler", daemon=True)

    def __enter__(self) -> ResourceSampler:
        if self.enabled:
            # psutil is imported here, not with the module: sampling starts after the run's first
            # statement, so it stays out of the run's cold start (docs/performance.md).
            import psutil  # noqa: PLC0415

            self._process = psutil.Process()
            psutil.cpu_percent()  # the first reading is meaningless: it starts the measurement window
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sampling (idempotent) with one last sample."""
        if self.enabled and not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._sample()

    def _sample(self) -> None:
        import psutil  # noqa: PLC0415 (imported by __enter__ already: see there)

        self.cpu.append(psutil.cpu_percent())
        self.memory.append(psutil.virtual_memory().percent)
        self.rss.append(self._process.memory_info().rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": cuts[94], "p99": cuts[98]}


# One number per run each: its Prometheus name (claims_etl_<name>), also the name the CSV export of
# stored runs gives it (claims_etl/cli/render.py), and the field of the run's metrics record it comes
# from, with the divisor that makes a percent a 0..1 ratio.
SCALAR_METRICS: dict[str, tuple[str, float]] = {
    "claims_per_second": ("claims_per_second", 1.0),
    "rejected_ratio": ("rejection_rate", 1.0),
    "cpu_usage_max_ratio": ("cpu_percent_max", 100.0),
    "cpu_usage_mean_ratio": ("cpu_percent_mean", 100.0),
    "memory_usage_max_ratio": ("memory_percent_max", 100.0),
    "rss_max_bytes": ("rss_bytes_max", 1.0),
}


def scalar_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """The scalar metrics of a run's metrics record (`RunMetrics.as_dict`, as stored), by name.

    >>> scalar_metrics({"cpu_percent_max": 50.0, "rejection_rate": 0.25})
    {'rejected_ratio': 0.25, 'cpu_usage_max_ratio': 0.5}
    """
    return {
        name: float(record[field]) / divisor
        for name, (field, divisor) in SCALAR_METRICS.items()
        if record.get(field) is not None
    }


@dataclass
class RunMetrics:
    """Everything measured about one run, beyond its stage records."""

    claims_read: int = 0
    claims_rejected: int = 0
    # Set for a run that did not succeed: the claims it committed (priced, rejected, quarantined), which
    # its throughput counts instead of the claims read: a run stopped early read ranges it never loaded.
    claims_committed: int | None = None
    seconds: float = 0.0
    chunk_seconds: list[float] = field(default_factory=list)
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)  # warn-severity rules (rules file)
    cache: dict[str, Any] = field(default_factory=dict)
    cpu_percent_max: float = 0.0
    cpu_percent_mean: float = 0.0
    memory_percent_max: float = 0.0
    rss_bytes_max: int = 0
    connections: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per claim_id range: {"range", "worker", "attempt", "claims", "seconds": {stage: s}} (a Dask run's
    # per-task timings, kept with the run in etl_run_metrics).
    ranges: list[dict[str, Any]] = field(default_factory=list)

    def take_resources(self, sampler: ResourceSampler) -> None:
        self.cpu_percent_max = max(sampler.cpu, default=0.0)
        self.cpu_percent_mean = statistics.fmean(sampler.cpu) if sampler.cpu else 0.0
        self.memory_percent_max = max(sampler.memory, default=0.0)
        self.rss_bytes_max = max(sampler.rss, default=0)

    @property
    def rejection_rate(self) -> float:
        return self.claims_rejected / self.claims_read if self.claims_read else 0.0

    @property
    def claims_per_second(self) -> float:
        """Claims read per second of wall time; for a run that did not succeed, claims committed."""
        claims = self.claims_read if self.claims_committed is None else self.claims_committed
        return claims / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        fields = {name: value for name, value in asdict(self).items() if name != "ranges"}  # the run lists them
        return fields | {
            "chunk_latency_seconds": percentiles(self.chunk_seconds),
            "rejection_rate": self.rejection_rate,
            "claims_per_second": self.claims_per_second,
        }

    def _chunk_summary(self) -> list[Sample]:
        quantiles = {"0.5": "p50", "0.95": "p95", "0.99": "p99"}
        measured = percentiles(self.chunk_seconds)
        out = [Sample("claims_etl_chunk_seconds", measured[p], {"quantile": q}) for q, p in quantiles.items()]
        return [
            *out,
            Sample("claims_etl_chunk_seconds_sum", sum(self.chunk_seconds)),
            Sample("claims_etl_chunk_seconds_count", len(self.chunk_seconds)),
        ]

    def samples(self, stages: list[StageRecord], *, succeeded: bool, claims: Mapping[str, int]) -> list[Sample]:
        """The run's samples: `claims` by outcome (priced, rejected, quarantined, recovered)."""
        out = [Sample("claims_etl_run_success", 1.0 if succeeded else 0.0)]
        out += [Sample("claims_etl_run_claims", n, {"outcome": outcome}) for outcome, n in claims.items()]
        out += [Sample("claims_etl_claims_read", self.claims_read), Sample("claims_etl_run_seconds", self.seconds)]
        out += [Sample(f"claims_etl_{name}", value) for name, value in scalar_metrics(self.as_dict()).items()]
        for stage in stages:
            labels = {"stage": stage.stage}
            out += [
                Sample("claims_etl_stage_seconds", stage.seconds, labels),
                Sample("claims_etl_stage_rows", stage.rows_out, labels),
                Sample("claims_etl_stage_rows_per_second", stage.rows_per_second, labels),
            ]
        out += self._chunk_summary()
        out += [
            Sample("claims_etl_cache_hit_ratio", float(self.cache.get("hit_rate", 0.0))),
            Sample("claims_etl_cache_seconds", float(self.cache.get("seconds", 0.0))),
        ]
        out += [Sample("claims_etl_rejections", n, {"rule": rule}) for rule, n in self.rejections_by_rule.items()]
        out += [Sample("claims_etl_warnings", n, {"rule": rule}) for rule, n in self.warnings_by_rule.items()]
        for database, counts in self.connections.items():
            out += [Sample(f"claims_etl_connections_{kind}", n, {"database": database}) for kind, n in counts.items()]
        for part in self.ranges:
            labels = {"range": str(part["range"]), "worker": part["worker"], "attempt": str(part["attempt"])}
            out += [
                Sample("claims_etl_range_stage_seconds", seconds, labels | {"stage": stage})
                for stage, seconds in part["seconds"].items()
            ]
        return out
