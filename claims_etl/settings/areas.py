"""The settings of each area, one class each: the source, the warehouse (target), how a run is worked,
the RVU cache, monitoring and alerts, the payer's rules, and the crash tests' fault points. `Settings`
(claims_etl/settings/__init__.py) is all of them at once: a field keeps its flat name
(`settings.load_chunk_claims`) and its variable (`CLAIMS_ETL_LOAD_CHUNK_CLAIMS`), and `AREAS` says which
area holds it (`claims-etl config show`, the README's settings table)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator

if TYPE_CHECKING:
    from claims_etl.settings.rules_file import RuleSet

# Counts that reach SQL as bigint parameters (the lease's limit, a range's size): above it PostgreSQL
# refuses the statement mid-run (exit 1); refused here instead, as bad usage (exit 2).
BIGINT_MAX = 2**63 - 1
DEFAULT_SOURCE_URL = "postgresql://postgres@127.0.0.1:5432/claims_etl"
# psqlODBC sends one round trip per row with server-side prepare; without it and with BatchSize=100 it
# batches rows (docs/operations.md, benchmarks/LOG.md). CommLog=0: Debian's odbcinst.ini logs every
# statement (claim data included) to /tmp otherwise.
DEFAULT_TARGET_ODBC = (
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=claims_etl;Uid=postgres;"
    "UseServerSidePrepare=0;BatchSize=100;CommLog=0"
)


def _cores() -> int:
    return os.cpu_count() or 1


class SourceSettings(BaseModel):
    """The PostgreSQL staging database: where it is and how long any wait on it may last.

    Timeouts (docs/operations.md, "Timeouts"): every wait on either database is bounded, so a server, a
    lock or a network path that stops answering fails the run (exit 1) instead of hanging it. 0: none.
    Connecting; the server's statement_timeout and lock_timeout (advisory locks too: a retried range
    waits for its earlier attempt's at most that long); the client's bound on one call's reply (one
    statement with its results; one connectorx read whole), longer than the statement timeout so the
    server's own error normally comes first."""

    source_url: SecretStr = SecretStr(DEFAULT_SOURCE_URL)
    source_connect_timeout_seconds: int = Field(default=10, ge=0, le=3600)
    source_statement_timeout_seconds: int = Field(default=300, ge=0)
    source_lock_timeout_seconds: int = Field(default=60, ge=0)
    source_reply_timeout_seconds: int = Field(default=600, ge=0)
    # TCP keepalives on every PostgreSQL connection (source, psqlODBC warehouse), both ends: a dead peer
    # is found after idle + interval x count seconds. Idle 0: keepalives off.
    tcp_keepalives_idle_seconds: int = Field(default=30, ge=0, le=7200)
    tcp_keepalives_interval_seconds: int = Field(default=10, ge=1, le=600)
    tcp_keepalives_count: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _reply_outlasts_statement(self) -> SourceSettings:
        """The client's reply bound must leave the server's statement timeout room to fire first: its
        error names the cause, a client-side timeout only says nothing came back."""
        reply, statement = self.source_reply_timeout_seconds, self.source_statement_timeout_seconds
        if reply and statement and reply <= statement:
            raise ValueError("source_reply_timeout_seconds must be longer than source_statement_timeout_seconds")
        return self


class TargetSettings(BaseModel):
    """The warehouse: an ODBC connection string (its dialect from the driver) or a PostgreSQL URL, its
    timeouts, and how its rows are written."""

    target_odbc: SecretStr = SecretStr(DEFAULT_TARGET_ODBC)
    # A PostgreSQL warehouse by URL (postgresql://...), loaded by COPY over psycopg; when set it is the
    # warehouse and target_odbc is not used.
    target_url: SecretStr | None = None
    # Override for targets reached through a DSN whose driver name does not reveal the DBMS.
    target_dialect: str | None = Field(default=None, pattern="^(mssql|postgresql|mysql)$")
    # Where unixODBC's system configuration is (its own variables, unprefixed), as the user set them
    # (`user_odbc_variables`): each process connects with a private copy of it, made on its own machine,
    # whose tracing is off.
    odbc_sysini: str = Field(default="/etc", validation_alias="ODBCSYSINI")
    odbc_instini: str = Field(default="odbcinst.ini", validation_alias="ODBCINSTINI")
    # The login timeout, and the longest a statement may wait for its reply (MariaDB: the driver's
    # READ/WRITE_TIMEOUT; psqlODBC: the server's statement_timeout; reads: arrow-odbc's query timeout).
    # Per driver in docs/operations.md.
    target_connect_timeout_seconds: int = Field(default=15, ge=0, le=3600)
    target_query_timeout_seconds: int = Field(default=300, ge=0)
    # Claims per warehouse transaction: bounds the work a crash can roll back and the memory per write;
    # smaller chunks let chunk k's source marking overlap chunk k+1's write (docs/performance.md).
    load_chunk_claims: int = Field(default=20_000, ge=1)
    # Warehouse sessions writing chunks at once, each in its own process (turbodbc holds the GIL while
    # it writes); 1 writes in the run's own process. More pays where the warehouse has cores to spare,
    # not where it shares a few cores with everything else (claims_etl/engine/writers.py, docs/performance.md).
    load_connections: int = Field(default=1, ge=1, le=32)
    # Rows per ODBC parameter array round trip (turbodbc `parameter_sets_to_buffer`).
    odbc_parameter_sets: int = Field(default=10_000, ge=1)


class RunSettings(BaseModel):
    """Which claims a run takes and how it is worked: in this process (local), or one task per claim_id
    range on a Dask cluster (claims_etl/engine/dask_engine.py): the cluster at `scheduler`, or without it
    a LocalCluster of `dask_workers` processes on this machine."""

    batch_id: str | None = None
    limit: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    # Claims with a line no loaded release prices: stop the run (exit 2), or leave them pending.
    skip_unpriceable: bool = False
    run_date: date | None = None  # V09's "today"; pinned in tests and replays
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    dask_workers: int = Field(default_factory=_cores, ge=1, le=256)
    # Claims per range, the unit of work (claims_etl/engine/leases.py): bounds a run's memory to one range's
    # frames and, on Dask, is the size of one task.
    range_claims: int = Field(default=100_000, ge=1, le=BIGINT_MAX)
    # connectorx connections reading one range in parallel claim_id sub-ranges.
    partitions: int = Field(default_factory=_cores, ge=1, le=64)

    def task_partitions(self) -> int:
        """connectorx readers per Dask task: one unless PARTITIONS was set (the tasks are the parallelism)."""
        return self.partitions if "partitions" in self.model_fields_set else 1

    def effective_run_date(self) -> date:
        return self.run_date or date.today()


class CacheSettings(BaseModel):
    """The shared RVU cache (Redis); without it each process reads the reference tables itself."""

    redis_url: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0.0, le=30.0)  # a slow cache is worse than none


class MonitoringSettings(BaseModel):
    """Live progress, resource sampling, the run log, log lines and alerts.

    Alerts are evaluated at the end of every run and mean "someone should look" (docs/operations.md,
    Alerts). Throughput and the rejected share are judged against the newest succeeded runs (the
    baseline); absolute limits are the operator's. Connection limits are what the DBAs granted the ETL."""

    alert_baseline_runs: int = Field(default=10, ge=1, le=1000)
    alert_throughput_drop: float = Field(default=0.5, gt=0.0, le=1.0)  # of the baseline's median claims/s
    alert_min_claims_per_second: float | None = Field(default=None, ge=0.0)  # an absolute floor: off
    # A run is compared with the baseline, and is part of it, only with this many claims: smaller runs'
    # throughput is mostly set-up and their rejected share mostly chance.
    alert_baseline_min_claims: int = Field(default=10_000, ge=1)
    alert_max_cpu_percent: float | None = Field(default=None, ge=0.0)  # off: a batch job uses its CPU
    alert_max_memory_percent: float = 85.0
    alert_max_connection_use: float = 0.9
    alert_min_cache_hit_rate: float = 0.8  # with a shared cache (redis_url), when it should have had the frames
    alert_rejection_rate_rise: float = Field(default=0.05, ge=0.0, le=1.0)  # above the baseline's median share
    alert_max_rejection_rate: float = Field(default=0.5, ge=0.0, le=1.0)  # whatever the baseline
    source_connection_limit: int = Field(default=20, ge=1)
    target_connection_limit: int = Field(default=4, ge=1)
    # Off only to measure the monitoring's overhead.
    monitoring: bool = True
    metrics_textfile: str | None = None  # Prometheus node_exporter textfile to (over)write after a run
    # Log lines on stderr (claims_etl/ops/logs.py): JSON objects or console lines; auto is console on
    # a terminal and JSON otherwise (cron, Airflow, a pipe).
    log_format: Literal["auto", "json", "console"] = "auto"


class RulesSettings(BaseModel):
    """The payer's rules file (docs/spec.md §5.1), read and checked whole when the settings are built, so
    a bad file stops a run before it leases anything; None: the contract's rules V01-V17."""

    rules_file: Path | None = None
    _rules: RuleSet | None = PrivateAttr(default=None)  # the file as read: pickled to Dask workers with the rest

    @model_validator(mode="after")
    def _read_rules(self) -> RulesSettings:
        if self.rules_file is not None:  # without a file, the contract's rules are read when first used
            self._rules = _load_rules(self.rules_file)  # ConfigurationError (exit 2) naming the key
        return self

    def rules(self) -> RuleSet:
        """The rules in force: the file read when these settings were built, or the contract's rules
        read at the first call without one (read again only if a `model_copy` changed `rules_file`,
        which skips validation)."""
        if self._rules is None or self._rules.path != (None if self.rules_file is None else str(self.rules_file)):
            self._rules = _load_rules(self.rules_file)
        return self._rules


def _load_rules(path: Path | None) -> RuleSet:
    """rules_file.load_rules, imported when rules are read: its pydantic models cost a run's cold start
    (docs/performance.md) and most runs use the contract's rules, read after the first statement."""
    from claims_etl.settings.rules_file import load_rules  # noqa: PLC0415 (cold start)

    return load_rules(path)


class FaultSettings(BaseModel):
    """Crash tests only (claims_etl/dev/fault_hooks.py): a point where the run SIGKILLs itself, and a pause
    length; acted on only under `python -m claims_etl.dev.faulty` (claims_etl/faults.py)."""

    fault: str | None = Field(default=None, pattern=r"^[a-z_]+(:\d+)?$")
    fault_pause: float = Field(default=0.0, ge=0.0, le=600.0)
    fault_once_file: str | None = None


class LocatingSettings(BaseModel):
    """Where more settings are read from (docs/operations.md): the TOML config file (default
    ./claims-etl.toml when there is one) and its profile, and a directory of one file per setting."""

    config: Path | None = None
    profile: str | None = None
    secrets_dir: Path | None = None


# Each area and its class, in the order `config show` and the docs list them.
AREAS: dict[str, type[BaseModel]] = {
    "source": SourceSettings,
    "target": TargetSettings,
    "run": RunSettings,
    "cache": CacheSettings,
    "monitoring": MonitoringSettings,
    "rules": RulesSettings,
    "faults": FaultSettings,
    "locating": LocatingSettings,
}


def area_of(field: str) -> str:
    """The area a setting belongs to.

    >>> area_of("load_chunk_claims"), area_of("redis_url")
    ('target', 'cache')
    """
    return next(name for name, area in AREAS.items() if field in area.model_fields)
