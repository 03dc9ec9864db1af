"""The one settings object: every value the engine needs, from `CLAIMS_ETL_*` variables or CLI flags.
A secret (a connection string) can also come from a file: `CLAIMS_ETL_<NAME>_FILE` names it.

Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from claims_etl.errors import ConfigurationError
from claims_etl.stages.rules_config import RuleSet, load_rules

DEFAULT_SOURCE_URL = "postgresql://postgres@127.0.0.1:5432/claims_etl"
# psqlODBC sends one round trip per row with server-side prepare; without it and with BatchSize=100 it
# batches rows (docs/operations.md, benchmarks/LOG.md). CommLog=0: Debian's odbcinst.ini logs every
# statement (claim data included) to /tmp otherwise.
DEFAULT_TARGET_ODBC = (
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=claims_etl;Uid=postgres;"
    "UseServerSidePrepare=0;BatchSize=100;CommLog=0"
)


class _SecretFiles(EnvSettingsSource):
    """`CLAIMS_ETL_<NAME>_FILE=/path` for each secret setting: the named file's content, stripped (a
    Docker or Kubernetes secret, a systemd credential), so a password need not be in a flag (the
    process list) or the environment. Setting both the variable and its `_FILE` is an error; a flag
    overrides either."""

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if SecretStr not in (field.annotation, *get_args(field.annotation)):
                continue
            variable = f"{self.env_prefix}{name}".upper()
            path = self.env_vars.get(self._apply_case_sensitive(f"{variable}_FILE"))
            if not path:
                continue
            if self.env_vars.get(self._apply_case_sensitive(variable)) is not None:
                raise ConfigurationError(f"set {variable} or {variable}_FILE, not both")
            try:
                values[name] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or type(error).__name__
                raise ConfigurationError(f"{variable}_FILE: cannot read {path}: {reason}") from None
        return values


class Settings(BaseSettings):
    """Connection strings, run options and tuning knobs, from `CLAIMS_ETL_*` variables or arguments.

    Invariant: this is the only reader of the environment; a keyword argument overrides its
    variable, an unknown name or an out-of-range value raises `pydantic.ValidationError`, and the
    object is frozen. Connection strings are `SecretStr`, so they never print.

    Parameters
    ----------
    **values
        Any field below by name, e.g. ``source_url``, ``target_odbc``, ``batch_id``, ``limit``,
        ``partitions``, ``load_chunk_claims``; unset fields come from ``CLAIMS_ETL_<NAME>`` (the
        README's settings table lists each with its default and meaning), else the default.

    Examples
    --------
    >>> from claims_etl import Settings
    >>> settings = Settings(source_url="postgresql://etl:secret@staging-host:5432/claims", limit=10_000)
    >>> settings.limit, settings.source_url
    (10000, SecretStr('**********'))

    With no arguments, each value comes from its variable or its default (here with
    ``CLAIMS_ETL_BATCH_ID=B0001`` in the environment):

    >>> Settings().batch_id  # doctest: +SKIP
    'B0001'
    """

    model_config = SettingsConfigDict(env_prefix="CLAIMS_ETL_", frozen=True, extra="forbid")

    source_url: SecretStr = SecretStr(DEFAULT_SOURCE_URL)
    target_odbc: SecretStr = SecretStr(DEFAULT_TARGET_ODBC)
    # Override for targets reached through a DSN whose driver name does not reveal the DBMS.
    target_dialect: str | None = Field(default=None, pattern="^(mssql|postgresql|mysql)$")
    # Where unixODBC's system configuration is (its own variables, unprefixed): the engine connects with
    # a private copy of it whose tracing is off (claims_etl/db/odbc_config.py).
    odbc_sysini: str = Field(default="/etc", validation_alias="ODBCSYSINI")
    odbc_instini: str = Field(default="odbcinst.ini", validation_alias="ODBCINSTINI")
    redis_url: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0.0, le=30.0)  # a slow cache is worse than none

    # How a run is worked: in this process (local), or one task per claim_id range on a Dask cluster
    # (claims_etl/engine/dask_engine.py): the cluster at `scheduler`, or without it a LocalCluster of
    # `dask_workers` processes on this machine.
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    dask_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    # Claims per range, the unit of work (claims_etl/engine/planning.py): bounds a run's memory to one range's
    # frames and, on Dask, is the size of one task.
    range_claims: int = Field(default=100_000, ge=1)
    # connectorx connections reading one range in parallel claim_id sub-ranges.
    partitions: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    batch_id: str | None = None
    limit: int | None = Field(default=None, ge=1)
    # Claims with a line no loaded release prices: stop the run (exit 2), or leave them pending.
    skip_unpriceable: bool = False
    # Claims per warehouse transaction: bounds the work a crash can roll back and the memory per write;
    # smaller chunks let chunk k's source marking overlap chunk k+1's write (docs/performance.md).
    load_chunk_claims: int = Field(default=20_000, ge=1)
    # Warehouse sessions writing chunks at once, each in its own process (turbodbc holds the GIL while
    # it writes); 1 writes in the run's own process. More pays where the warehouse has cores to spare,
    # not where it shares a few cores with everything else (claims_etl/engine/writers.py, docs/performance.md).
    load_connections: int = Field(default=1, ge=1, le=32)
    # Rows per ODBC parameter array round trip (turbodbc `parameter_sets_to_buffer`).
    odbc_parameter_sets: int = Field(default=10_000, ge=1)
    run_date: date | None = None  # V09's "today"; pinned in tests and replays
    # The payer's rules file (docs/spec.md §5.1), read and checked whole when the settings are built,
    # so a bad file stops a run before it leases anything; None: the contract's rules V01-V15.
    rules_file: Path | None = None
    _rules: RuleSet | None = PrivateAttr(default=None)  # the file as read: pickled to Dask workers with the rest

    # Alerts, evaluated at the end of every run. Connection limits are what the DBAs granted the ETL.
    alert_min_claims_per_second: float = 6_667.0  # the replaced system's promise
    alert_throughput_min_claims: int = 10_000  # small runs are dominated by set-up: no throughput alert
    alert_max_cpu_percent: float = 90.0
    alert_max_memory_percent: float = 85.0
    alert_max_connection_use: float = 0.9
    alert_min_cache_hit_rate: float = 0.8
    alert_max_rejection_rate: float = 0.05
    source_connection_limit: int = Field(default=20, ge=1)
    target_connection_limit: int = Field(default=4, ge=1)
    # Live progress, resource sampling, the run log and alerts. Off only to measure their overhead.
    monitoring: bool = True
    metrics_textfile: str | None = None  # Prometheus node_exporter textfile to (over)write after a run
    # Crash tests only (claims_etl/dev/fault_hooks.py): a point where the run SIGKILLs itself, and a pause length.
    fault: str | None = Field(default=None, pattern=r"^[a-z_]+(:\d+)?$")
    fault_pause: float = Field(default=0.0, ge=0.0, le=600.0)
    fault_once_file: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments (flags), then `CLAIMS_ETL_*` variables, then `CLAIMS_ETL_*_FILE` secret files."""
        return init_settings, env_settings, _SecretFiles(settings_cls), dotenv_settings, file_secret_settings

    def task_partitions(self) -> int:
        """connectorx readers per Dask task: one unless PARTITIONS was set (the tasks are the parallelism)."""
        return self.partitions if "partitions" in self.model_fields_set else 1

    def effective_run_date(self) -> date:
        return self.run_date or date.today()

    @model_validator(mode="after")
    def _read_rules(self) -> Settings:
        self._rules = load_rules(self.rules_file)  # ConfigurationError (exit 2) naming the key
        return self

    def rules(self) -> RuleSet:
        """The rules in force: the file read when these settings were built (read again only if a
        `model_copy` changed `rules_file`, which skips validation)."""
        if self._rules is None or self._rules.path != (None if self.rules_file is None else str(self.rules_file)):
            self._rules = load_rules(self.rules_file)
        return self._rules
