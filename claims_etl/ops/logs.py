"""Log lines: structlog rendering every stdlib `logging` record as one JSON object or one console line.

The package logs through stdlib loggers (`logging.getLogger(__name__)`, structured fields in `extra`),
so a library caller's own logging set-up keeps working; only the CLI calls `configure`. Every line a
run logs carries its `run_id` (structlog contextvars, bound by `run_context`); a failed command ends
with one `failed` line naming the run, the stage, the error class and the exit code (`failed`).
Messages carry counts, ids of runs and claims and rule ids, never claim contents or credentials.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import structlog

from claims_etl.errors import ClaimsEtlError
from claims_etl.ops.timing import span

LogFormat = Literal["auto", "json", "console"]

log = logging.getLogger("claims_etl")
_format: Literal["json", "console"] = "console"  # the CLI's failure line follows it (cli/invocation.py)

# Applied to every record, stdlib or structlog: the run's bound fields, the record's `extra` fields.
_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def resolve(log_format: str | None) -> Literal["json", "console"]:
    """`json` or `console` as asked; otherwise (`auto`, not given) console lines for a person at a
    terminal and JSON for anything else (cron, Airflow, a pipe)."""
    if log_format == "json":
        return "json"
    if log_format == "console":
        return "console"
    return "console" if sys.stderr.isatty() else "json"


def configure(log_format: str | None, *, verbose: bool = False) -> Literal["json", "console"]:
    """One stderr handler on the root logger rendering every record in the format asked for.

    Levels: the package's loggers at INFO in JSON (stage events for the log stack) and WARNING on a
    console (the progress bars show the stages); DEBUG with `verbose`. Other libraries stay at
    WARNING: their debug lines are not ours to vouch for (they could print connection details)."""
    global _format  # noqa: PLW0603  (logging is process-wide state; this mirrors the handler installed)
    _format = resolve(log_format)
    render: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if _format == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # a library's warning is a log line in the same format
    package = logging.DEBUG if verbose else logging.INFO if _format == "json" else logging.WARNING
    log.setLevel(package)
    structlog.configure(
        processors=[  # a structlog logger, should one be used, goes through the same handler
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return _format


def current_format() -> Literal["json", "console"]:
    return _format


@contextmanager
def run_context(run_id: str, name: str = "run") -> Iterator[None]:
    """While a run works: its `run_id` on every log line of this context (and of the contexts copied
    from it: the local engine's prepare thread), one trace span around it when OpenTelemetry is
    installed, and the run id on a ClaimsEtlError leaving it (for the failure line)."""
    with structlog.contextvars.bound_contextvars(run_id=run_id), span(name, run_id=run_id):
        try:
            yield
        except ClaimsEtlError as error:
            if error.run_id is None:
                error.run_id = run_id
            raise


def failed(error: ClaimsEtlError, message: str) -> None:
    """The one line a failed command ends with, in the configured format's logger: `message` is the
    error's text already scrubbed of secrets."""
    fields = {
        "run_id": error.run_id,
        "stage": error.stage,
        "error_class": type(error).__name__,
        "exit_code": error.exit_code,
        "error": message,
    }
    log.error("failed", extra=fields)
