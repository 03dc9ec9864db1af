"""Who writes a chunk to the warehouse: this process, or a pool of writer processes with one target
session each (`CLAIMS_ETL_LOAD_CONNECTIONS`).

Why processes: turbodbc holds the GIL for a whole `executemanycolumns` call, so two threads never
write at once, while a MariaDB or SQL Server session ingests on one server core; two processes write
side by side. A PostgreSQL target given by URL (COPY over psycopg, claims_etl/db/pg_target.py) is
written the same way: each writer process holds its own session.

When it pays: where the warehouse has cores of its own (production). Where the databases and the run
share a few cores, more writer sessions take the cores the next range's extract and the source's
marking need. So the default is 1 (docs/performance.md, benchmarks/LOG.md).

Exactly once is unchanged: each chunk is still one warehouse transaction, marked in the source only
after its commit (claims_etl/engine/planning.py). A writer process dies with the run (`_die_with_the_run`), so
no orphan goes on writing after its run is gone; a chunk it had not committed rolls back with its
session, and one it had committed is recovered by the next run like any committed, unmarked chunk.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from claims_etl.db.connections import Target, connect_target
from claims_etl.dev import fault_hooks
from claims_etl.errors import TargetError
from claims_etl.ops.timing import peak_rss_bytes
from claims_etl.settings import Settings
from claims_etl.stages.load import ChunkTables, ChunkWritten, write_chunk


class Writer(Protocol):
    connections: int

    def submit(self, chunk: ChunkTables, chunk_number: int) -> Future[ChunkWritten]:
        """Start writing one chunk (one transaction); the future gives the rows written and the claims
        quarantined."""
        ...

    def peak_rss_bytes(self) -> int:
        """Peak RSS of the writer processes together (0 when writing in this process)."""
        ...


@dataclass
class InProcessWriter:
    """Writes on this process's target session, before `submit` returns: the default, and always a
    Dask task's load (a Dask worker is a daemon process, which may not start processes of its own)."""

    settings: Settings
    target: Target
    connections: int = 1

    def submit(self, chunk: ChunkTables, chunk_number: int) -> Future[ChunkWritten]:
        done: Future[ChunkWritten] = Future()
        checkpoint = partial(fault_hooks.point, self.settings, chunk=chunk_number)
        try:
            done.set_result(write_chunk(self.settings, self.target, chunk, checkpoint))
        except Exception as error:  # the caller meets it at .result(), as with a writer process
            done.set_exception(error)
        return done

    def peak_rss_bytes(self) -> int:
        return 0


# Per writer process: the run's settings, and its target session once connected.
_settings: Settings | None = None
_session: Target | None = None


def _start_writer(settings: Settings, run_pid: int) -> None:
    """Writer process start: die with the run, and make fault points kill the run too. The session
    is opened by the first task, so that a failed connection reaches the run as its TargetError, not
    as a broken pool."""
    global _settings  # noqa: PLW0603  (per-process state of a pool worker)
    _die_with_the_run()
    fault_hooks.kill_with(run_pid)
    _settings = settings


def _die_with_the_run() -> None:
    """SIGKILL this process as soon as the run exits, however it exits. Not PR_SET_PDEATHSIG: the
    parent is the fork server, which lives as long as its children do. The run holds the only other
    end of this process's parent sentinel, so the sentinel turns readable when the run is gone. A
    thread waits on it; if the run dies during an insert, which holds the GIL, the kill lands when the
    insert returns. A chunk committed in that window is one more committed, unmarked chunk: the next
    run recovers it (its DELETE waits for this session's row locks), as after any crash."""
    parent = multiprocessing.parent_process()
    assert parent is not None, "a writer is always started by the run"

    def wait_for_the_run() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_the_run, name="die-with-run", daemon=True).start()


def _connected() -> Target:
    global _session  # noqa: PLW0603
    assert _settings is not None, "writer process not started"
    if _session is None:
        _session = connect_target(_settings)
    return _session


def _warm_up() -> None:
    _connected()


def _write(chunk: ChunkTables, chunk_number: int) -> tuple[ChunkWritten, int, int]:
    """One chunk in one transaction; returns what was written, this process's id and its peak RSS."""
    assert _settings is not None, "writer process not started"
    written = write_chunk(_settings, _connected(), chunk, partial(fault_hooks.point, _settings, chunk=chunk_number))
    return written, os.getpid(), peak_rss_bytes()


def _writer_died(broken: BrokenProcessPool) -> TargetError:
    died = TargetError("load", "a warehouse writer process died; the next run repairs what it committed")
    died.__cause__ = broken
    return died


@dataclass
class ProcessWriter:
    """`connections` writer processes, forked from a fork server that imported this module once, so
    they start in milliseconds and share its pages; opened at the start of the run so that their
    connections are made while the first range is being prepared."""

    settings: Settings
    connections: int
    _pool: ProcessPoolExecutor = field(init=False)
    _peaks: dict[int, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["claims_etl.engine.writers"])
        self._pool = ProcessPoolExecutor(
            max_workers=self.connections,
            mp_context=context,
            initializer=_start_writer,
            initargs=(self.settings, os.getpid()),
        )

    def warm_up(self) -> list[Future[None]]:
        """Start the writer processes and connect them now. A failure here is not lost: the first
        write connects again and raises it."""
        return [self._pool.submit(_warm_up) for _ in range(self.connections)]

    def submit(self, chunk: ChunkTables, chunk_number: int) -> Future[ChunkWritten]:
        done: Future[ChunkWritten] = Future()

        def settle(writing: Future[tuple[ChunkWritten, int, int]]) -> None:
            try:
                rows, pid, peak = writing.result()
            except BrokenProcessPool as broken:
                done.set_exception(_writer_died(broken))
            except BaseException as error:
                done.set_exception(error)
            else:
                self._peaks[pid] = peak
                done.set_result(rows)

        try:
            self._pool.submit(_write, chunk, chunk_number).add_done_callback(settle)
        except BrokenProcessPool as broken:
            done.set_exception(_writer_died(broken))
        return done

    def peak_rss_bytes(self) -> int:
        """The writers' peaks summed: an upper bound, since each counts the pages it shares with the
        fork server."""
        return sum(self._peaks.values())

    def close(self) -> None:
        """Wait for writes in flight (each commits or rolls back whole), then stop the processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def writer_processes(settings: Settings) -> int:
    """Writer processes a local run starts: one per load connection, or none for a single one."""
    return settings.load_connections if settings.load_connections > 1 else 0


@contextmanager
def open_writer(settings: Settings, target: Target, *, wait_connected: bool = False) -> Iterator[Writer]:
    """The writer `settings.load_connections` asks for: writer processes, started and connecting as
    soon as this is entered (a run's first range is being prepared meanwhile), or, for 1, the
    `target` session of this process."""
    if not writer_processes(settings):
        yield InProcessWriter(settings, target)
        return
    writer = ProcessWriter(settings, writer_processes(settings))
    try:
        connecting = writer.warm_up()
        if wait_connected:
            for connection in connecting:
                connection.result()
        yield writer
    finally:
        writer.close()
