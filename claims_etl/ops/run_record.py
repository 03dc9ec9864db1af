"""The run record a scheduler reads (`run --json`, `run --results FILE`), as dbt's run_results.json is:
the run's summary with a schema version, the invocation (its arguments with every connection string
masked), ISO 8601 timestamps throughout, the outcome, the error and the counts. Its JSON Schema is
docs/run-record.schema.json; a version changes only when a field changes meaning or goes away."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claims_etl.errors import ConfigurationError

SCHEMA_VERSION = 1
MASK = "***"
# Options whose value is a connection string (and so may hold a password): masked in the record.
SECRET_OPTIONS = ("--source-url", "--target-odbc", "--target-url", "--redis-url")


def masked(args: Sequence[str]) -> list[str]:
    """The command's arguments with every connection string replaced by `MASK`.

    >>> masked(["run", "--source-url", "postgresql://etl:pw@db/claims", "--target-url=postgresql://x:y@w/h", "--json"])
    ['run', '--source-url', '***', '--target-url=***', '--json']
    """
    out: list[str] = []
    for arg in args:
        if out and out[-1] in SECRET_OPTIONS:
            out.append(MASK)
        elif arg.startswith(tuple(f"{option}=" for option in SECRET_OPTIONS)):
            out.append(f"{arg.split('=', 1)[0]}={MASK}")
        else:
            out.append(arg)
    return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def record(summary: dict[str, Any], started_at: float, args: Sequence[str], version: str) -> dict[str, Any]:
    """The record of a finished run from its summary (`RunResult.as_dict`, its `outcome` included) and its
    start (epoch seconds): the summary's fields, each stage's start as ISO 8601, and the record's own."""
    stages = [stage | {"started_at": _iso(stage["started_at"])} for stage in summary["stages"]]
    return {
        "schema_version": SCHEMA_VERSION,
        "invocation": {"command": "run", "args": masked(args), "claims_etl_version": version},
        "started_at": _iso(started_at),
        "finished_at": _iso(started_at + summary["seconds"]),
        **summary,
        "stages": stages,
    }


def check_writable(path: Path) -> None:
    """Before the run: a results file that cannot be written is bad usage (exit 2), not a failed run."""
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise ConfigurationError(f"--results {path}: its directory does not exist or cannot be written")


def write(path: Path, document: dict[str, Any]) -> None:
    """Write the record atomically (a temporary file renamed over it): a reader never sees half of it,
    and a write that fails (OSError: the disk full, the directory gone) leaves no file behind. Synced
    before the rename, so that a crash after it cannot leave an empty record in its place, and a
    filesystem that reports a full disk only when the data is flushed (NFS) reports it here."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, default=str)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
