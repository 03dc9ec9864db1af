"""Who writes a chunk to the warehouse: this process, or a pool of writer processes with one target
session each (`CLAIMS_ETL_LOAD_CONNECTIONS`).

Why processes: turbodbc holds the GIL for a whole `executemanycolumns` call, so two threads never
write at once, while a MariaDB or SQL Server session ingests on one server core; two processes write
side by side. A PostgreSQL target given by URL (COPY over psycopg, claims_etl/targets/postgres.py) is
written the same way: each writer process holds its own session.

When it pays: where the warehouse has cores of its own (production). Where the databases and the run
share a few cores, more writer sessions take the cores the next range's extract and the source's
marking need. So the default is 1 (docs/performance.md, benchmarks/LOG.md).

Exactly once is unchanged: each chunk is still one warehouse transaction, marked in the source only
after its commit (claims_etl/engine/leases.py). A writer process dies with the run (`_die_with_the_run`), so
no orphan goes on writing after its run is gone; a chunk it had not committed rolls back with its
session, and one it had committed is recovered by the next run like any committed, unmarked chunk.

A stalled writer (stopped, or hung outside any driver timeout) must not hang the run: each writer's
heartbeat thread stamps shared memory, and a watchdog in the run fails every write in flight and kills
a writer silent for longer than `stall_bound_seconds` (docs/operations.md, Timeouts).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import threading
import time
from collections.abc import Container, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.context import BaseContext
from typing import Any, NamedTuple, Protocol

from claims_etl.engine import stopping
from claims_etl.errors import TargetError
from claims_etl.faults import Faults, no_faults
from claims_etl.ops.timing import peak_rss_bytes
from claims_etl.settings import Settings
from claims_etl.stages.isolate import ChunkWritten, write_chunk
from claims_etl.stages.load import ChunkTables
from claims_etl.targets import Target, connect_target


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
    faults: Faults = no_faults  # the run's fault points (claims_etl/faults.py)
    connections: int = 1

    def submit(self, chunk: ChunkTables, chunk_number: int) -> Future[ChunkWritten]:
        done: Future[ChunkWritten] = Future()
        checkpoint = partial(self.faults, chunk=chunk_number)
        try:
            done.set_result(write_chunk(self.settings, self.target, chunk, checkpoint))
        except Exception as error:  # the caller meets it at .result(), as with a writer process
            done.set_exception(error)
        return done

    def peak_rss_bytes(self) -> int:
        return 0


# Beyond the driver's own bounds, what a writer may stay silent for: its heartbeat interval, a busy
# machine's scheduling, the Python between two driver calls.
STALL_MARGIN_SECONDS = 5.0
_BEAT_SECONDS = 0.5  # heartbeat and watchdog period
_KILL_GRACE_SECONDS = 2.0  # from SIGTERM to SIGKILL


def stall_bound_seconds(settings: Settings) -> float | None:
    """How long a writer process may show no sign of life before the run fails and kills it: query
    timeout + connect timeout + STALL_MARGIN_SECONDS. Its heartbeat is a thread of the writer process,
    so it tells that the process runs, not that its write moves: it catches a writer stopped or frozen
    (SIGSTOP, a frozen cgroup, swapped out) or wedged in Python holding the GIL. A write waiting inside
    the driver (turbodbc releases the GIL) beats on and is bounded by the driver's own query timeout.
    None (no bound) when either timeout is 0 (off), as documented.

    >>> from claims_etl.settings import Settings
    >>> stall_bound_seconds(Settings(target_query_timeout_seconds=3, target_connect_timeout_seconds=3))
    11.0
    """
    query, connect = settings.target_query_timeout_seconds, settings.target_connect_timeout_seconds
    if not query or not connect:
        return None
    return query + connect + STALL_MARGIN_SECONDS


class Silence(NamedTuple):
    pid: int
    chunk: int  # 0: between chunks
    seconds: float


@dataclass
class Vitals:
    """Signs of life of the writer processes, in memory shared with the run: per writer slot its pid,
    the chunk it is writing (0: none) and its last heartbeat (`time.monotonic`: one clock for every
    process of the machine). Each slot has one writing process, so no lock but the slot counter's."""

    pids: Any  # ctypes arrays from multiprocessing (typeshed has no usable type for them)
    chunks: Any
    beats: Any
    taken: Any

    @classmethod
    def shared(cls, context: BaseContext, writers: int) -> Vitals:
        pids, chunks, beats = (context.Array(code, writers, lock=False) for code in ("q", "q", "d"))
        return cls(pids, chunks, beats, taken=context.Value("i", 0))

    def register(self) -> int:
        """In a writer process at its start: its slot, stamped."""
        with self.taken.get_lock():  # stamped before it is counted: the watchdog never reads an empty slot
            slot = int(self.taken.value)
            self.pids[slot], self.beats[slot] = os.getpid(), time.monotonic()
            self.taken.value = slot + 1
        return slot

    def silent(self, bound: float, *, since: float = 0.0, skip: Container[int] = ()) -> Silence | None:
        """A live writer (not in `skip`) silent for more than `bound` seconds, counted from its last
        heartbeat or from `since` if later (exited writers are not stalled)."""
        now = time.monotonic()
        for slot in range(int(self.taken.value)):
            pid, seconds = int(self.pids[slot]), now - max(self.beats[slot], since)
            if seconds > bound and pid > 0 and pid not in skip and _alive(pid):  # pid 0: our process group
                return Silence(pid, int(self.chunks[slot]), seconds)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid: int) -> None:
    """End a writer: SIGTERM, with SIGCONT so that a stopped process receives it, then SIGKILL if it is
    still there after a grace period. Its session ends with it, so its open transaction rolls back
    and releases its row locks, which the next run's repair would otherwise wait for."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + _KILL_GRACE_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):  # a zombie too (its fork server reaps it): harmless
            os.kill(pid, signal.SIGKILL)


def _stalled(silence: Silence, settings: Settings) -> TargetError:
    where = f"writing chunk {silence.chunk}" if silence.chunk else "between chunks"
    bound = f"CLAIMS_ETL_TARGET_QUERY_TIMEOUT_SECONDS {settings.target_query_timeout_seconds} + " + (
        f"CLAIMS_ETL_TARGET_CONNECT_TIMEOUT_SECONDS {settings.target_connect_timeout_seconds} + "
        f"{STALL_MARGIN_SECONDS:.0f} s margin"
    )
    return TargetError(
        "load",
        f"warehouse writer process {silence.pid} stalled {where}: no sign of life for {silence.seconds:.1f} s, "
        f"over its bound ({bound}); the writer was killed, the next run recovers its claims",
    )


# Per writer process: the run's settings and fault points, its target session once connected, and its vitals slot.
_settings: Settings | None = None
_faults: Faults = no_faults
_session: Target | None = None
_vitals: Vitals | None = None
_slot = -1


def _start_writer(settings: Settings, run_pid: int, vitals: Vitals, faults: Faults) -> None:
    """Writer process start: die with the run, make its fault points kill the run too, and beat. The
    session is opened by the first task, so that a failed connection reaches the run as its
    TargetError, not as a broken pool."""
    global _settings, _faults, _vitals, _slot  # noqa: PLW0603 (per-process state of a pool worker)
    # Its own process group: a signal to the run's group reaches the run alone, which finishes the
    # writes in flight and then stops the writers (engine/stopping.py). SIGINT it ignores from its
    # fork on (`_start_fork_server`).
    os.setpgid(0, 0)
    _die_with_the_run()
    _faults = faults.in_writer(run_pid)
    _settings, _vitals, _slot = settings, vitals, vitals.register()
    threading.Thread(target=_beat, args=(vitals, _slot), name="heartbeat", daemon=True).start()


def _beat(vitals: Vitals, slot: int) -> None:
    """Stamp this writer's heartbeat for ever. A thread, so a stopped or wedged process stops beating."""
    while True:
        vitals.beats[slot] = time.monotonic()
        time.sleep(_BEAT_SECONDS)


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
    assert _settings is not None and _vitals is not None, "writer process not started"
    _vitals.chunks[_slot] = chunk_number  # for the run's error line, should this writer stall
    try:
        _faults("stall_writer", chunk_number)
        written = write_chunk(_settings, _connected(), chunk, partial(_faults, chunk=chunk_number))
    finally:
        _vitals.chunks[_slot] = 0
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
    faults: Faults = no_faults
    _pool: ProcessPoolExecutor = field(init=False)
    _peaks: dict[int, int] = field(default_factory=dict, init=False)
    _vitals: Vitals = field(init=False)
    _stall: TargetError | None = field(default=None, init=False)  # set by the watchdog, before its kill
    _closed: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        # The fault hooks' module too (a test's): a writer unpickles them at its start, before it leaves
        # the run's process group, so that start imports nothing more.
        context.set_forkserver_preload(["claims_etl.engine.writers", type(self.faults).__module__])
        _start_fork_server()
        self._vitals = Vitals.shared(context, self.connections)
        self._pool = ProcessPoolExecutor(
            max_workers=self.connections,
            mp_context=context,
            initializer=_start_writer,
            initargs=(self.settings, os.getpid(), self._vitals, self.faults),
        )
        bound = stall_bound_seconds(self.settings)
        if bound is not None:
            threading.Thread(target=self._watch, args=(bound,), name="writer-watchdog", daemon=True).start()

    def _watch(self, bound: float) -> None:
        """Until the pool is closed: a writer silent past `bound` is killed, which breaks the pool, so
        every wait on a write (chunk_loading, `close`) ends, with this error rather than a bare
        'process died'. It goes on watching after one kill: another stopped writer would never act on
        the pool's SIGTERM and `close` would wait for it. When the watchdog itself was not scheduled
        for a while (the whole job stopped and resumed, a frozen cgroup), silence counts from its
        waking: the writers were stopped with it, not stalled."""
        killed: set[int] = set()
        awake = last = time.monotonic()
        while not self._closed.wait(_BEAT_SECONDS):
            now = time.monotonic()
            if now - last > STALL_MARGIN_SECONDS:
                awake = now
            last = now
            silence = self._vitals.silent(bound, since=awake, skip=killed)
            if silence is not None:
                self._stall = self._stall or _stalled(silence, self.settings)
                killed.add(silence.pid)
                _kill(silence.pid)

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
                done.set_exception(self._stall or _writer_died(broken))
            except BaseException as error:
                done.set_exception(error)
            else:
                self._peaks[pid] = peak
                done.set_result(rows)

        try:
            self._pool.submit(_write, chunk, chunk_number).add_done_callback(settle)
        except BrokenProcessPool as broken:
            done.set_exception(self._stall or _writer_died(broken))
        return done

    def peak_rss_bytes(self) -> int:
        """The writers' peaks summed: an upper bound, since each counts the pages it shares with the
        fork server."""
        return sum(self._peaks.values())

    def close(self) -> None:
        """Wait for writes in flight (each commits or rolls back whole), then stop the processes. The
        watchdog runs until then: a writer that stalls meanwhile is killed, so this wait is bounded too."""
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._closed.set()


def _start_fork_server() -> None:
    """Start the fork server the writers come from ignoring SIGINT from its first instruction, and so
    every writer it forks: a Ctrl-C at the terminal reaches the run's whole process group, and would
    otherwise kill the fork server while it imports its modules (the run then failing on a broken
    pool instead of stopping in order), or a writer before it leaves the group."""
    with stopping.sigint_ignored():
        multiprocessing.forkserver.ensure_running()


def writer_processes(settings: Settings) -> int:
    """Writer processes a local run starts: one per load connection, or none for a single one."""
    return settings.load_connections if settings.load_connections > 1 else 0


@contextmanager
def open_writer(
    settings: Settings, target: Target, *, wait_connected: bool = False, faults: Faults = no_faults
) -> Iterator[Writer]:
    """The writer `settings.load_connections` asks for: writer processes, started and connecting as
    soon as this is entered (a run's first range is being prepared meanwhile), or, for 1, the
    `target` session of this process. `faults`: the run's fault points, in the writers too."""
    if not writer_processes(settings):
        yield InProcessWriter(settings, target, faults)
        return
    writer = ProcessWriter(settings, writer_processes(settings), faults)
    try:
        connecting = writer.warm_up()
        if wait_connected:
            for connection in connecting:
                connection.result()
        yield writer
    finally:
        writer.close()
