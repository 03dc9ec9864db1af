"""`claims-etl export FILE`: recent runs' stage timings and metrics as CSV, to a file or stdout."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.errors import ConfigurationError

STDOUT = Path("-")


def export_command(
    file: Annotated[Path, typer.Argument(help="CSV file to write; - for standard output", allow_dash=True)],
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="the last N runs")] = 100,
    source_url: opt.SourceUrl = None,
) -> None:
    """Stage timings and run metrics of recent runs as CSV (one row per run and value)."""
    from claims_etl.cli import render  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.ops import progress_log

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        rows = render.export_rows(progress_log.recent(settings, limit=runs))
        if file == STDOUT:  # only the CSV on stdout, so it can be piped
            _write(sys.stdout, render.EXPORT_COLUMNS, rows)
            return
        try:
            with file.open("w", newline="", encoding="utf-8") as handle:
                _write(handle, render.EXPORT_COLUMNS, rows)
        except OSError as error:
            raise ConfigurationError(f"cannot write {file}: {error.strerror}") from None
    invocation.out().print(f"wrote {len(rows)} rows to {file}")


def _write(handle: IO[str], columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
