"""A run's live progress and final summary, published to `staging.etl_run_log` in the source database
(reachable by every run and by `report`, `dashboard`, `export` from any terminal, Redis or not)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg

from claims_etl.db import sql
from claims_etl.db.source import connect_source, live_runs, source_connection
from claims_etl.errors import ClaimsEtlError
from claims_etl.ops.alerts import PastRun
from claims_etl.settings import Settings

log = logging.getLogger(__name__)


class ProgressLog:
    """Publishes a run's progress and, at the end, its summary (own autocommit connection)."""

    def __init__(self, settings: Settings, run_id: str, started_at: datetime) -> None:
        self.settings, self.run_id, self.started_at = settings, run_id, started_at
        self.progress: dict[str, dict[str, int]] = {}
        self.status = "running"
        self._broken = False
        self._connection: psycopg.Connection[Any] | None = None
        # Stages report from several threads (reference, prepare, mark): one publish at a time, on the
        # one session, and the progress dict is not serialized while another thread adds to it.
        self._lock = threading.Lock()

    def _publish(self, summary: dict[str, Any]) -> None:
        """Best effort: monitoring never fails a run. A dropped session is reopened once; if the log
        still cannot be written, one warning and no more tries."""
        if not self.settings.monitoring or self._broken:
            return
        row = {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "status": self.status,
            "summary": json.dumps(summary, default=str),
        }
        for attempt in (1, 2):
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = connect_source(self.settings, autocommit=True)
                    self._connection.execute(sql.load("progress/hold_log_lock"), {"run_id": self.run_id})
                self._connection.execute(sql.load("progress/publish"), row)
                return
            except psycopg.Error as error:
                self.close()
                self._connection = None
                if attempt == 2:
                    self._broken = True
                    log.warning("run progress not published: %s", type(error).__name__)

    def advance(self, stage: str, done: int, total: int) -> None:
        """Publish at every call: calls come per stage boundary and per load chunk (tens per run)."""
        with self._lock:
            self.progress[stage] = {"done": done, "total": total}
            self._publish({"run_id": self.run_id, "status": self.status, "progress": self.progress})

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        with self._lock:
            self.status = status
            self._publish(summary | {"progress": self.progress, "finished_at": datetime.now(UTC).isoformat()})
            self.close()

    def finish_if_left_running(self, status: str, summary: dict[str, Any]) -> None:
        """A run that ended before its own final summary (failed opening the warehouse, say, after its
        start-up threads published progress): its row says how it ended, not `running` until the next
        run takes it for killed. Nothing when nothing was published."""
        if self.status == "running" and self.progress:
            self.finish(status, summary)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _log_lock(run_id: str) -> str:
    """The name whose run-lock key is the run's log lock (progress/hold_log_lock.sql)."""
    return f"{run_id}:log"


def dead_runs(connection: psycopg.Connection[Any], asking: str = "") -> list[str]:
    """Runs the log shows `running` whose process is gone: no session holds their run lock (taken
    before their first progress row) nor their log lock (held until their last status is written).
    Asking takes no lock. `asking`, a run holding its own locks, is left out."""
    running = [str(row[0]) for row in connection.execute(sql.load("progress/running_runs"), {"run_id": asking})]
    alive = live_runs(connection, [*running, *map(_log_lock, running)])
    return [each for each in running if each not in alive and _log_lock(each) not in alive]


def mark_killed(connection: psycopg.Connection[Any], run_id: str) -> list[str]:
    """Runs the log still shows `running` whose process is gone (SIGKILLed, or the machine lost:
    `dead_runs`) become `failed` with the note `killed`, in one commit; their run ids are returned.
    Run `run_id` (the caller, holding its own lock) is never one of them. A run publishes its first
    progress only once it holds its run lock, and holds its log lock until its final status is
    written, so neither a run starting nor one finishing is taken for dead."""
    dead = dead_runs(connection, run_id)
    killed = connection.execute(sql.load("progress/mark_killed"), {"run_ids": dead}).fetchall() if dead else []
    connection.commit()
    return [str(row[0]) for row in killed]


def recent(
    settings: Settings, limit: int = 10, run_id: str | None = None, *, until: str | None = None
) -> list[dict[str, Any]]:
    """Newest runs first (or one run; with `until`, the runs started no later than that one): each its
    summary plus run_id, status, started_at, updated_at.

    A run the log shows `running` whose process is gone shows as `failed` with the note `killed` at
    once, before the next run marks it so in the log (`mark_killed`). The dead are found before the
    rows are read: a run that finishes in between was alive, and shows its own final status."""
    values: dict[str, Any] = {"run_id": run_id} if run_id else {"limit": limit, "until": until}
    query = "progress/one_run" if run_id else "progress/recent"
    with source_connection(settings) as connection:
        dead = set(dead_runs(connection))
        rows = connection.execute(sql.load(query), values).fetchall()
    runs = []
    for rid, status, started, updated, summary in rows:
        run = summary | {"run_id": rid, "status": status, "started_at": started.isoformat()}
        if status == "running" and rid in dead:
            run |= {"status": "failed", "note": "killed"}
        runs.append(run | {"updated_at": updated.isoformat()})
    return runs


def baseline(settings: Settings, run_id: str) -> list[PastRun]:
    """The newest `alert_baseline_runs` succeeded runs other than `run_id`, newest first: what the run's
    alerts compare it with. Best effort, as monitoring is: an unreadable log is no baseline."""
    values = {"run_id": run_id, "runs": settings.alert_baseline_runs}
    try:
        with source_connection(settings) as connection:
            rows = connection.execute(sql.load("progress/baseline"), values).fetchall()
    except ClaimsEtlError as error:
        log.debug("no alert baseline: %s", type(error).__name__)
        return []
    return [
        PastRun(int(read or 0), float(rate or 0.0), float(rejected or 0.0), version, float(ago))
        for read, rate, rejected, version, ago in rows
    ]


def failure_reason(error: dict[str, Any]) -> str:
    """Why a run did not succeed, from the `error` its summary records: class, stage, message (already scrubbed)."""
    stage = f" in {error['stage']}" if error.get("stage") else ""
    return f"{error['class']}{stage}: {error['message']}"


def last_success(settings: Settings) -> float | None:
    """When the newest successful run finished (Unix seconds), or None: none recorded, or the log
    unreachable (a failed run asks, and its failure may be the source's)."""
    try:
        with source_connection(settings) as connection:
            row = connection.execute(sql.load("progress/last_success")).fetchone()
    except ClaimsEtlError:
        return None
    return None if row is None or row[0] is None else float(row[0])
