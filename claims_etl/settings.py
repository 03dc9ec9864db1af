"""The one settings object: every value the engine needs, from CLI flags, `CLAIMS_ETL_*` variables, a
secret's file (`CLAIMS_ETL_<NAME>_FILE`, or one per setting in `CLAIMS_ETL_SECRETS_DIR`) or a TOML
config file (`claims-etl.toml` with named profiles), in that order of precedence, else the default.

Nothing else in the package reads the environment.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from claims_etl.errors import ConfigurationError, userinfo_problem

if TYPE_CHECKING:
    from claims_etl.stages.rules_config import RuleSet

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


# unixODBC's own variables (unprefixed), and where claims_etl/db/odbc_config.py keeps what they were
# before it pointed them at its private copy: a JSON object of the user's values (null: unset) and the
# copy's directory, inherited by the process's children like the variables themselves.
ODBC_VARIABLES = ("ODBCSYSINI", "ODBCINSTINI")
ODBC_USER_VARIABLE = "_CLAIMS_ETL_ODBC_USER"


def user_odbc_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """ODBCSYSINI and ODBCINSTINI as the user set them (None: unset): through this process's (or a
    parent's) private redirection (db/odbc_config.py), never the private copy's path, which exists on
    this machine alone while settings travel to Dask workers on others. Variables the user set again
    since the redirection are the user's.

    >>> user = {"ODBCSYSINI": "/opt/odbc", "ODBCINSTINI": None, "private": "/tmp/claims-etl-odbc-0/ab"}
    >>> redirected = {"ODBCSYSINI": "/tmp/claims-etl-odbc-0/ab", "ODBCINSTINI": "odbcinst.ini"}
    >>> user_odbc_variables(redirected | {ODBC_USER_VARIABLE: json.dumps(user)})
    {'ODBCSYSINI': '/opt/odbc', 'ODBCINSTINI': None}
    >>> user_odbc_variables({"ODBCSYSINI": "/srv/odbc", ODBC_USER_VARIABLE: json.dumps(user)})["ODBCSYSINI"]
    '/srv/odbc'
    """
    current = {name: environ.get(name) for name in ODBC_VARIABLES}
    try:
        saved = json.loads(environ.get(ODBC_USER_VARIABLE) or "null")
    except ValueError:
        return current
    if not isinstance(saved, dict) or saved.get("private") is None or current["ODBCSYSINI"] != saved["private"]:
        return current
    return {name: saved.get(name) for name in ODBC_VARIABLES}


class _Environment(EnvSettingsSource):
    """`CLAIMS_ETL_*` variables, and unixODBC's as the user set them (`user_odbc_variables`)."""

    def __call__(self) -> dict[str, Any]:
        values = {key: value for key, value in super().__call__().items() if key not in ODBC_VARIABLES}
        return values | {name: value for name, value in user_odbc_variables(os.environ).items() if value is not None}


DEFAULT_CONFIG = Path("claims-etl.toml")  # read from the working directory when no file is named
# Where to find the config file and the secrets: settable by flag or variable, not in the file itself.
_LOCATING = ("config", "profile")


class _ConfigFile(InitSettingsSource):
    """The TOML config file (docs/operations.md): its top-level keys, with the `[profiles.<name>]`
    table of the chosen profile over them. Keys are Settings field names; any other key, a profile the
    file lacks or a file that cannot be read is a ConfigurationError (exit 2) naming it and the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None, profile: str | None) -> None:
        self.path, self.profile, self.from_profile = path, profile, set[str]()
        values: dict[str, Any] = {}
        if path is None and profile is not None:
            raise ConfigurationError(f"profile {profile!r} given but no config file (--config or CLAIMS_ETL_CONFIG)")
        if path is not None:
            document = _read_toml(path)
            profiles = document.pop("profiles", {})
            values = _checked(settings_cls, document, path, "")
            if profile is not None:
                if not isinstance(profiles, dict) or not isinstance(profiles.get(profile), dict):
                    known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
                    raise ConfigurationError(f"{path}: no profile {profile!r} (profiles: {known or 'none'})")
                overrides = _checked(settings_cls, profiles[profile], path, f" in [profiles.{profile}]")
                self.from_profile = set(overrides)
                values |= overrides
        self.values = values
        super().__init__(settings_cls, values | ({"config": path} if path else {}))  # the default file, if read

    def origin(self, name: str) -> str:
        if name == "config":
            return "default"  # ./claims-etl.toml, found (a named file's origin is its flag or variable)
        return f"file:{self.profile}" if name in self.from_profile else "file"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigurationError(f"config file {path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:  # names the line and column, never the value
        raise ConfigurationError(f"config file {path}: not valid TOML: {error}") from None


def _checked(settings_cls: type[BaseSettings], table: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    """The table's keys, each a settable field name, with aliased fields (ODBCSYSINI) under their alias."""
    fields = settings_cls.model_fields
    for key in table:
        if key not in fields or key in _LOCATING:
            raise ConfigurationError(f"{path}: unknown setting {key!r}{where}")
    return {_alias(settings_cls, key): value for key, value in table.items()}


def _alias(settings_cls: type[BaseSettings], name: str) -> str:
    alias = settings_cls.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else name


def _secrets_dir(settings_cls: type[BaseSettings], directory: str | Path) -> SecretsSettingsSource:
    """One file per setting, named by the setting (`source_url`, `target_odbc`), its content stripped:
    pydantic-settings' secrets directory, checked here because it only warns of a missing one."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigurationError(f"secrets directory {path} is not a directory")
    return SecretsSettingsSource(settings_cls, secrets_dir=path, env_prefix="")


def _origin(source: PydanticBaseSettingsSource, name: str) -> str:
    """Where a value from this source came from, as `claims-etl config show` names it."""
    if isinstance(source, _ConfigFile):
        return source.origin(name)
    if isinstance(source, _SecretFiles):
        return "env (_FILE)"
    if isinstance(source, SecretsSettingsSource):
        return "secrets dir"
    if isinstance(source, EnvSettingsSource):
        return "env"
    return "flag"


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
        README's settings table lists each with its default and meaning), its ``_FILE``, the secrets
        directory, the config file (``config=``/``CLAIMS_ETL_CONFIG``, its ``profile=`` over its top
        level: docs/operations.md), else the default. A bad config file raises `ConfigurationError`.

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
    # A PostgreSQL warehouse by URL (postgresql://...), loaded by COPY over psycopg
    # (claims_etl/db/pg_target.py); when set it is the warehouse and target_odbc is not used.
    target_url: SecretStr | None = None
    # Override for targets reached through a DSN whose driver name does not reveal the DBMS.
    target_dialect: str | None = Field(default=None, pattern="^(mssql|postgresql|mysql)$")
    # Where unixODBC's system configuration is (its own variables, unprefixed), as the user set them
    # (`user_odbc_variables`): each process connects with a private copy of it, made on its own machine,
    # whose tracing is off (claims_etl/db/odbc_config.py).
    odbc_sysini: str = Field(default="/etc", validation_alias="ODBCSYSINI")
    odbc_instini: str = Field(default="odbcinst.ini", validation_alias="ODBCINSTINI")
    redis_url: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0.0, le=30.0)  # a slow cache is worse than none
    # Timeouts (docs/operations.md, "Timeouts"): every wait on either database is bounded, so a server,
    # a lock or a network path that stops answering fails the run (exit 1) instead of hanging it. 0: none.
    # Source (PostgreSQL, psycopg and connectorx): connecting; the server's statement_timeout and
    # lock_timeout (advisory locks too: a retried range waits for its earlier attempt's at most that long);
    # the client's bound on one call's reply (one statement with its results; one connectorx read
    # whole), longer than the statement timeout so the server's own error normally comes first.
    source_connect_timeout_seconds: int = Field(default=10, ge=0, le=3600)
    source_statement_timeout_seconds: int = Field(default=300, ge=0)
    source_lock_timeout_seconds: int = Field(default=60, ge=0)
    source_reply_timeout_seconds: int = Field(default=600, ge=0)
    # TCP keepalives on every PostgreSQL connection (source, psqlODBC warehouse), both ends: a dead peer
    # is found after idle + interval x count seconds. Idle 0: keepalives off.
    tcp_keepalives_idle_seconds: int = Field(default=30, ge=0, le=7200)
    tcp_keepalives_interval_seconds: int = Field(default=10, ge=1, le=600)
    tcp_keepalives_count: int = Field(default=3, ge=1, le=100)
    # Warehouse (ODBC): the login timeout, and the longest a statement may wait for its reply (MariaDB:
    # the driver's READ/WRITE_TIMEOUT; psqlODBC: the server's statement_timeout; reads: arrow-odbc's
    # query timeout). Per driver in docs/operations.md.
    target_connect_timeout_seconds: int = Field(default=15, ge=0, le=3600)
    target_query_timeout_seconds: int = Field(default=300, ge=0)

    # How a run is worked: in this process (local), or one task per claim_id range on a Dask cluster
    # (claims_etl/engine/dask_engine.py): the cluster at `scheduler`, or without it a LocalCluster of
    # `dask_workers` processes on this machine.
    engine: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    dask_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    # Claims per range, the unit of work (claims_etl/engine/planning.py): bounds a run's memory to one range's
    # frames and, on Dask, is the size of one task.
    range_claims: int = Field(default=100_000, ge=1, le=BIGINT_MAX)
    # connectorx connections reading one range in parallel claim_id sub-ranges.
    partitions: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    batch_id: str | None = None
    limit: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
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
    # so a bad file stops a run before it leases anything; None: the contract's rules V01-V17.
    rules_file: Path | None = None
    _rules: RuleSet | None = PrivateAttr(default=None)  # the file as read: pickled to Dask workers with the rest

    # Alerts, evaluated at the end of every run. Connection limits are what the DBAs granted the ETL.
    # Alerts mean "someone should look" (docs/operations.md, Alerts). Throughput and the rejected share
    # are judged against the newest succeeded runs (the baseline); absolute limits are the operator's.
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
    # Live progress, resource sampling, the run log and alerts. Off only to measure their overhead.
    monitoring: bool = True
    metrics_textfile: str | None = None  # Prometheus node_exporter textfile to (over)write after a run
    # Log lines on stderr (claims_etl/ops/logs.py): JSON objects or console lines; auto is console on
    # a terminal and JSON otherwise (cron, Airflow, a pipe).
    log_format: Literal["auto", "json", "console"] = "auto"
    # Crash tests only (claims_etl/dev/fault_hooks.py): a point where the run SIGKILLs itself, and a pause length.
    fault: str | None = Field(default=None, pattern=r"^[a-z_]+(:\d+)?$")
    fault_pause: float = Field(default=0.0, ge=0.0, le=600.0)
    fault_once_file: str | None = None
    # Where more settings are read from (docs/operations.md): the TOML config file (default
    # ./claims-etl.toml when there is one) and its profile, and a directory of one file per setting.
    config: Path | None = None
    profile: str | None = None
    secrets_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments (flags), then `CLAIMS_ETL_*` variables, then `CLAIMS_ETL_*_FILE` secret files, then
        the secrets directory, then the config file (its profile over its top level); else the default."""
        assert isinstance(init_settings, InitSettingsSource) and isinstance(env_settings, EnvSettingsSource)

        def given(name: str) -> Any:
            """A locating setting from an argument, else its variable (the config file cannot set these)."""
            value = init_settings.init_kwargs.get(name)
            variable = env_settings._apply_case_sensitive(f"{env_settings.env_prefix}{name}")
            return value if value is not None else env_settings.env_vars.get(variable) or None

        path = given("config") or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
        config_file = _ConfigFile(settings_cls, None if path is None else Path(path), given("profile"))
        directory = given("secrets_dir") or config_file.values.get("secrets_dir")
        secrets = (_secrets_dir(settings_cls, directory),) if directory else ()
        return init_settings, _Environment(settings_cls), _SecretFiles(settings_cls), *secrets, config_file

    @classmethod
    def origins(cls, **arguments: Any) -> dict[str, str]:
        """Where each field's value comes from when built with these arguments: `flag` (an argument),
        `env`, `env (_FILE)`, `secrets dir`, `file` or `file:<profile>`, else `default`."""
        sources = cls.settings_customise_sources(
            cls,
            InitSettingsSource(cls, arguments),
            EnvSettingsSource(cls),
            DotEnvSettingsSource(cls),
            SecretsSettingsSource(cls),
        )
        names = {_alias(cls, name): name for name in cls.model_fields}
        found: dict[str, str] = {}
        for source in sources:
            for key, value in source().items():
                if value is not None:
                    found.setdefault(names.get(key, key), _origin(source, names.get(key, key)))
        return {name: found.get(name, "default") for name in cls.model_fields}

    @classmethod
    def log_format_asked(cls) -> str | None:
        """`CLAIMS_ETL_LOG_FORMAT` alone, read before the other settings: a bad one among those is
        still reported in the format asked for (cli/app.py). None when unset or unreadable."""
        try:
            value = EnvSettingsSource(cls)().get("log_format")
        except (SettingsError, ValueError):
            return None
        return value if isinstance(value, str) else None

    def task_partitions(self) -> int:
        """connectorx readers per Dask task: one unless PARTITIONS was set (the tasks are the parallelism)."""
        return self.partitions if "partitions" in self.model_fields_set else 1

    def effective_run_date(self) -> date:
        return self.run_date or date.today()

    def connection_strings(self) -> tuple[str, ...]:
        """Every connection string set: errors.scrub removes each, and the passwords it holds."""
        optional = (self.target_url, self.redis_url)
        urls = tuple(value.get_secret_value() for value in optional if value is not None)
        return (self.source_url.get_secret_value(), self.target_odbc.get_secret_value(), *urls)

    @field_validator("source_url", "target_url", "redis_url", mode="after")
    @classmethod
    def _url_parses(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A URL whose password holds an unencoded `@`, space, `/` or a bad `%` escape is refused here,
        before any driver parses it: the drivers split it in the wrong place and echo the pieces, which
        no scrubbing after the fact can recognise. ConfigurationError, not ValueError: pydantic would
        print a ValueError with the URL as its input."""
        problem = None if value is None else userinfo_problem(value.get_secret_value())
        if problem is not None:
            raise ConfigurationError(
                f"{info.field_name}: the URL's user or password holds {problem}; "
                "percent-encode it (the URL is not shown)"
            )
        return value

    @model_validator(mode="after")
    def _reply_outlasts_statement(self) -> Settings:
        """The client's reply bound must leave the server's statement timeout room to fire first: its
        error names the cause, a client-side timeout only says nothing came back."""
        reply, statement = self.source_reply_timeout_seconds, self.source_statement_timeout_seconds
        if reply and statement and reply <= statement:
            raise ValueError("source_reply_timeout_seconds must be longer than source_statement_timeout_seconds")
        return self

    @model_validator(mode="after")
    def _read_rules(self) -> Settings:
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
    """stages.rules_config.load_rules, imported when rules are read: its pydantic models cost a run's
    cold start (docs/performance.md) and most runs use the contract's rules, read after the first statement."""
    from claims_etl.stages.rules_config import load_rules  # noqa: PLC0415

    return load_rules(path)
