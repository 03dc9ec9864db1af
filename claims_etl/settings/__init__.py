"""The one settings object: every value the engine needs, from CLI flags, `CLAIMS_ETL_*` variables, a
secret's file (`CLAIMS_ETL_<NAME>_FILE`, or one per setting in `CLAIMS_ETL_SECRETS_DIR`) or a TOML
config file (`claims-etl.toml` with named profiles), in that order of precedence, else the default.

One class per area holds its fields (`areas.py`), where the values come from is `sources.py`, and the
payer's rules file format is `rules_file.py`. Nothing else in the package reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationInfo, field_validator
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
from claims_etl.settings.areas import (
    AREAS,
    BIGINT_MAX,
    DEFAULT_SOURCE_URL,
    DEFAULT_TARGET_ODBC,
    CacheSettings,
    FaultSettings,
    LocatingSettings,
    MonitoringSettings,
    RulesSettings,
    RunSettings,
    SourceSettings,
    TargetSettings,
    area_of,
)
from claims_etl.settings.sources import (
    DEFAULT_CONFIG,
    ODBC_USER_VARIABLE,
    ODBC_VARIABLES,
    ConfigFile,
    Environment,
    SecretFiles,
    alias,
    origin,
    secrets_dir_source,
    user_odbc_variables,
)

__all__ = [
    "AREAS",
    "BIGINT_MAX",
    "DEFAULT_CONFIG",
    "DEFAULT_SOURCE_URL",
    "DEFAULT_TARGET_ODBC",
    "ODBC_USER_VARIABLE",
    "ODBC_VARIABLES",
    "Settings",
    "area_of",
    "user_odbc_variables",
]


# The areas' fields, listed in AREAS order (pydantic collects the fields of the last base first).
class Settings(
    LocatingSettings,
    FaultSettings,
    RulesSettings,
    MonitoringSettings,
    CacheSettings,
    RunSettings,
    TargetSettings,
    SourceSettings,
    BaseSettings,
):
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
        config_file = ConfigFile(settings_cls, None if path is None else Path(path), given("profile"))
        directory = given("secrets_dir") or config_file.values.get("secrets_dir")
        secrets = (secrets_dir_source(settings_cls, directory),) if directory else ()
        return init_settings, Environment(settings_cls), SecretFiles(settings_cls), *secrets, config_file

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
        names = {alias(cls, name): name for name in cls.model_fields}
        found: dict[str, str] = {}
        for source in sources:
            for key, value in source().items():
                if value is not None:
                    found.setdefault(names.get(key, key), origin(source, names.get(key, key)))
        return {name: found.get(name, "default") for name in cls.model_fields}

    @classmethod
    def log_format_asked(cls) -> str | None:
        """`CLAIMS_ETL_LOG_FORMAT` alone, read before the other settings: a bad one among those is
        still reported in the format asked for (cli/invocation.py). None when unset or unreadable."""
        try:
            value = EnvSettingsSource(cls)().get("log_format")
        except (SettingsError, ValueError):
            return None
        return value if isinstance(value, str) else None

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
