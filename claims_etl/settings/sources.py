"""Where settings come from, and in which order (Settings.settings_customise_sources): a flag, a
`CLAIMS_ETL_*` variable, a secret's file (`CLAIMS_ETL_<NAME>_FILE`, or one per setting in
`CLAIMS_ETL_SECRETS_DIR`), a TOML config file (`claims-etl.toml` with named profiles), else the default.
The pydantic-settings sources that read each, and `origin`, which names the one a value came from."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
)

from claims_etl.errors import ConfigurationError


class SecretFiles(EnvSettingsSource):
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


# unixODBC's own variables (unprefixed), and where claims_etl/targets/odbc_config.py keeps what they were
# before it pointed them at its private copy: a JSON object of the user's values (null: unset) and the
# copy's directory, inherited by the process's children like the variables themselves.
ODBC_VARIABLES = ("ODBCSYSINI", "ODBCINSTINI")
ODBC_USER_VARIABLE = "_CLAIMS_ETL_ODBC_USER"


def user_odbc_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """ODBCSYSINI and ODBCINSTINI as the user set them (None: unset): through this process's (or a
    parent's) private redirection (targets/odbc_config.py), never the private copy's path, which exists on
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


class Environment(EnvSettingsSource):
    """`CLAIMS_ETL_*` variables, and unixODBC's as the user set them (`user_odbc_variables`)."""

    def __call__(self) -> dict[str, Any]:
        values = {key: value for key, value in super().__call__().items() if key not in ODBC_VARIABLES}
        return values | {name: value for name, value in user_odbc_variables(os.environ).items() if value is not None}


DEFAULT_CONFIG = Path("claims-etl.toml")  # read from the working directory when no file is named
# Where to find the config file and the secrets: settable by flag or variable, not in the file itself.
LOCATING = ("config", "profile")


class ConfigFile(InitSettingsSource):
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
        if key not in fields or key in LOCATING:
            raise ConfigurationError(f"{path}: unknown setting {key!r}{where}")
    return {alias(settings_cls, key): value for key, value in table.items()}


def alias(settings_cls: type[BaseSettings], name: str) -> str:
    alias = settings_cls.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else name


def secrets_dir_source(settings_cls: type[BaseSettings], directory: str | Path) -> SecretsSettingsSource:
    """One file per setting, named by the setting (`source_url`, `target_odbc`), its content stripped:
    pydantic-settings' secrets directory, checked here because it only warns of a missing one."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigurationError(f"secrets directory {path} is not a directory")
    return SecretsSettingsSource(settings_cls, secrets_dir=path, env_prefix="")


def origin(source: PydanticBaseSettingsSource, name: str) -> str:
    """Where a value from this source came from, as `claims-etl config show` names it."""
    if isinstance(source, ConfigFile):
        return source.origin(name)
    if isinstance(source, SecretFiles):
        return "env (_FILE)"
    if isinstance(source, SecretsSettingsSource):
        return "secrets dir"
    if isinstance(source, EnvSettingsSource):
        return "env"
    return "flag"
