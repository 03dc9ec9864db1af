"""What every command does around its work: the one Settings object from the shared options, the
command's flags and the environment; a known error as one scrubbed line and its exit code
(docs/spec.md §6); warnings; the output consoles; log lines.

Cold start: `claims-etl --help` and `--version` import this module and must not pay for pydantic
settings, structlog or rich (docs/performance.md), so those are imported inside the functions that use
them, which run only when a command does."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, get_args

import click
import typer

from claims_etl.errors import ClaimsEtlError, ConfigurationError, RunInterruptedError, carries_password, scrub

if TYPE_CHECKING:
    from pydantic import SecretStr
    from rich.console import Console

    from claims_etl.settings import Settings

SHARED = "claims_etl.shared_options"  # key of the options given before the command, in click's context meta

# Flags whose value may hold a password, and the variable that is the safer way to give it.
_SECRET_FLAGS = {
    "source_url": ("--source-url", "CLAIMS_ETL_SOURCE_URL"),
    "target_odbc": ("--target-odbc", "CLAIMS_ETL_TARGET_ODBC"),
    "target_url": ("--target-url", "CLAIMS_ETL_TARGET_URL"),
    "redis_url": ("--redis-url", "CLAIMS_ETL_REDIS_URL"),
}


@functools.cache
def out() -> Console:
    """Standard output: tables, summaries, JSON."""
    from rich.console import Console  # cold start (module docstring)

    return Console()


@functools.cache
def err() -> Console:
    """Standard error: warnings, errors, progress bars."""
    from rich.console import Console  # cold start (module docstring)

    return Console(stderr=True)


def arguments(**flags: Any) -> dict[str, Any]:
    """The Settings arguments of a command: the shared options given before it, then its own flags
    (those given: None is not given), a command's own winning."""
    context = click.get_current_context(silent=True)
    shared: dict[str, Any] = dict(context.meta.get(SHARED, {})) if context is not None else {}
    return shared | {key: value for key, value in flags.items() if value is not None}


def settings(**flags: Any) -> Settings:
    """Settings from the flags that were given (the shared ones before the command too), else the
    environment, a secret's file, the config file; a known error becomes its one line and exit code.
    A flag that carries a password (which any user can read in the process list) gets one warning
    line, without it; so does a password in the config file."""
    with one_line_errors():
        return _build(arguments(**flags))
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the context manager may swallow)


def _build(given: dict[str, Any]) -> Settings:
    import pydantic  # cold start (module docstring)

    from claims_etl.settings import Settings  # cold start (module docstring)

    for name, (flag, variable) in _SECRET_FLAGS.items():
        if name in given and carries_password(given[name]):
            warning(
                f"{flag} carries a password, which other users can read in the process "
                f"list; give it in {variable} or in a file named by {variable}_FILE instead"
            )
    try:
        built = Settings(**given)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"bad configuration: {problems}") from None
    in_file = file_passwords(built, given)
    if in_file:
        warning(
            f"{', '.join(in_file)} in {built.config} carries a password: keep the file "
            "readable by the ETL's user only, or move it to a CLAIMS_ETL_*_FILE or the secrets directory"
        )
    return built


def secret_settings() -> tuple[str, ...]:
    """The settings that hold a secret (a connection string that may carry a password)."""
    from pydantic import SecretStr  # cold start (module docstring)

    from claims_etl.settings import Settings  # cold start (module docstring)

    return tuple(
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *get_args(field.annotation))
    )


def file_passwords(built: Settings, given: dict[str, Any]) -> list[str]:
    """The secret settings whose value in force is the config file's and carries a password: allowed
    (a file readable only by the ETL's user is as good as a secrets directory), but warned about."""
    if built.config is None:
        return []
    origins = type(built).origins(**given)
    return [
        name
        for name in secret_settings()
        if origins[name].startswith("file") and carries_password(_secret(getattr(built, name)))
    ]


def _secret(value: SecretStr | None) -> str:
    return "" if value is None else value.get_secret_value()


@contextmanager
def one_line_errors(*secrets: str) -> Iterator[None]:
    """A known error becomes one scrubbed line on stderr and its exit code (docs/spec.md §6)."""
    try:
        yield
    except ClaimsEtlError as error:
        say(error, *secrets)
        raise typer.Exit(code=error.exit_code) from None


def say(error: ClaimsEtlError, *secrets: str) -> None:
    """`error` as its one scrubbed line on stderr, without ending the command (`one_line_errors` ends it)."""
    from rich.markup import escape  # cold start (module docstring)

    from claims_etl.ops import logs  # cold start (module docstring)

    one_line = " ".join(scrub(str(error), *secrets).split())  # driver messages span lines
    if logs.current_format() == "json":  # a log stack's failure line: run id, stage, error class, exit code
        logs.failed(error, one_line)
    elif isinstance(error, RunInterruptedError):
        run = f"run {error.run_id} " if error.run_id else ""
        err().print(f"[yellow]interrupted:[/yellow] {escape(run + one_line)}", highlight=False, soft_wrap=True)
    else:
        err().print(f"[red]error:[/red] {escape(one_line)}", highlight=False, soft_wrap=True)


def fail(error: ClaimsEtlError) -> NoReturn:
    """End the command with `error` as its one line and exit code (after its output was printed)."""
    with one_line_errors():
        raise error
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the context manager may swallow)


def warning(text: str) -> None:
    """A warning line: a log line in the JSON format (every stderr line one JSON object), else `warning: ...`."""
    from rich.markup import escape  # cold start (module docstring)

    from claims_etl.ops import logs  # cold start (module docstring)

    if logs.current_format() == "json":
        logs.log.warning(text)
    else:
        err().print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


def secrets(built: Settings) -> tuple[str, ...]:
    """The connection strings an error message must not show."""
    return built.connection_strings()


def configure_logging(verbose: bool, log_format: str | None) -> None:
    """Log lines on stderr as JSON or console lines (claims_etl/ops/logs.py); messages never carry
    claim data (only counts and ids of runs, claims and rules). Called with the flag before the
    settings are read (so a bad setting is reported in the format asked for), then with the setting."""
    from claims_etl.ops import logs  # cold start (module docstring)
    from claims_etl.settings import Settings  # cold start (module docstring)

    logs.configure(log_format or Settings.log_format_asked(), verbose=verbose)


def print_json(document: Any, default: Callable[[Any], Any] | None = None) -> None:
    """A command's `--json` output on stdout."""
    out().print_json(json.dumps(document, default=default))
