"""The source's reads into frames: queries read by connectorx into Polars, bounded by the reply
timeout, their failures (a Rust panic too) one scrubbed SourceError; and frames written into staging
tables by COPY. Apart from claims_etl/db/source.py, which stays light (no Polars or Arrow) for a run's
first statement (docs/performance.md, cold start)."""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.db.source import REPLY_TIMEOUT_SETTING, connectorx_url, named_timeout
from claims_etl.errors import SourceError, driver_message
from claims_etl.settings import Settings

log = logging.getLogger(__name__)
_R = TypeVar("_R")


class _NativeStderr:
    """fd 2 captured while connectorx reads: a Rust panic prints its report (several lines, before
    the PanicException reaches Python) straight to fd 2. Shared by concurrent readers (threads): the
    first to enter points fd 2 at a temporary file, the last to leave restores it and copies what was
    written there back to stderr; if a read failed, it is logged at debug level instead, scrubbed and
    on one line, so the failure is one line on stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved = -1
        self._file: IO[bytes] | None = None
        self._failed = False

    @contextmanager
    def captured(self, *secrets: str) -> Iterator[None]:
        with self._lock:
            if self._readers == 0:
                sys.stderr.flush()
                self._file = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the last reader, _restore)
                self._saved = os.dup(2)
                os.dup2(self._file.fileno(), 2)
                self._failed = False
            self._readers += 1
        failed = True
        try:
            yield
            failed = False
        finally:
            with self._lock:
                self._failed = self._failed or failed
                self._readers -= 1
                if self._readers == 0:
                    self._restore(secrets)

    def _restore(self, secrets: tuple[str, ...]) -> None:
        assert self._file is not None
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        written = self._file.read()
        self._file.close()
        if written and self._failed:
            log.debug(
                "reader's native output: %s",
                " ".join(driver_message(written.decode(errors="replace"), *secrets).split()),
            )
        elif written:
            os.write(2, written)


_NATIVE_STDERR = _NativeStderr()


class _AbandonedError(Exception):
    """A bounded call did not return in time (`_within`)."""


def _within(seconds: float | None, call: Callable[[], _R]) -> _R:
    """`call()` on a daemon thread, waited for at most `seconds` (None: called here, unbounded); its
    result, or its exception (a BaseException too) raised here. Past the bound `_AbandonedError` is raised
    and the thread left behind, blocked in the driver: connectorx has no timeout of its own for a
    silent connection, and a daemon thread does not keep the process from exiting."""
    if seconds is None:  # unbounded: no side thread (a Dask worker's reads, engine/dask_engine.py)
        return call()
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # handed to the waiting thread, raised there
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="claims-etl-source-read", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise _AbandonedError
    returned, value = outcome[0]
    if not returned:
        raise value
    result: _R = value
    return result


def read_frame(settings: Settings, query: str | list[str], *, stage: str) -> pl.DataFrame:
    """A query read from the source into Polars by connectorx, or a list of queries read side by side
    (one connection each) into one frame: callers partition in Python, never by connectorx's int64
    arithmetic (stages/extract.partition_bounds). connectorx raises RuntimeError, or panics, with the
    URL inside the text: every failure becomes one scrubbed SourceError here. A panic (pyo3's
    PanicException, say on a column type it cannot convert) derives from BaseException, not Exception,
    so it is caught as one; Ctrl-C and exits pass through. The panic's own report to stderr is kept
    off it (`_NativeStderr`). The read as a whole is bounded by the reply timeout (`_within`), each of
    its statements by the server's."""
    import connectorx as cx  # noqa: PLC0415  (Rust extension, only where the source is read)

    url, reader_url = settings.source_url.get_secret_value(), connectorx_url(settings)
    bound = settings.source_reply_timeout_seconds or None
    try:
        with _NATIVE_STDERR.captured(url, reader_url):
            table = _within(bound, lambda: cx.read_sql(reader_url, query, return_type="arrow"))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except _AbandonedError:
        message = f"no reply from the source within {bound} s ({REPLY_TIMEOUT_SETTING}); the read was abandoned"
        raise SourceError(stage, message, transient=True) from None
    except Exception as error:
        raise SourceError(stage, named_timeout(driver_message(str(error), url, reader_url)), transient=True) from None
    except BaseException as error:  # a Rust panic
        raise SourceError(stage, f"the reader panicked: {driver_message(str(error), url, reader_url)}") from None
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def copy_frame(cursor: psycopg.Cursor[Any], table: str, frame: pl.DataFrame) -> None:
    """COPY a frame into a table as CSV: strings quoted, so "" is an empty string and bare is NULL."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, quote_style="non_numeric")
    with cursor.copy(sql.with_identifiers("db/copy_csv", table=table, columns=frame.columns)) as copy:
        copy.write(buffer.getvalue())
