"""A run's live progress and final summary, published to `staging.etl_run_log` in the source database
(reachable by every run and by `report`, `dashboard`, `export` from any terminal, Redis or not)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from claims_etl.db import sql
from claims_etl.db.connections import connect_source, source_connection
from claims_etl.settings import Settings
from claims_etl.stages.extract import live_runs

log = logging.getLogger(__name__)


class ProgressLog:
    """Publishes a run's progress and, at the end, its summary (own autocommit connection)."""

    def __init__(self, settings: Settings, run_id: str, started_at: datetime) -> None:
        self.settings, self.run_id, self.started_at = settings, run_id, started_at
        self.progress: dict[str, dict[str, int]] = {}
        self.status = "running"
        self._broken = False
        self._connection: psycopg.Connection[Any] | None = None

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
                    self._connection = connect_source(self.settings.source_url.get_secret_value(), autocommit=True)
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
        self.progress[stage] = {"done": done, "total": total}
        self._publish({"run_id": self.run_id, "status": self.status, "progress": self.progress})

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.status = status
        self._publish(summary | {"progress": self.progress, "finished_at": datetime.now(UTC).isoformat()})
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def mark_killed(connection: psycopg.Connection[Any], run_id: str) -> list[str]:
    """Runs the log still shows `running` whose run is gone (no session holds its run lock: the
    process was SIGKILLed, or the machine lost) become `failed` with the note `killed`, in one commit;
    their run ids are returned. Run `run_id` (the caller, holding its own lock) is never one of them.
    A run publishes its first progress only once it holds its lock, so a run starting is never taken
    for dead; one whose lock is released just before its final status is marked, then overwritten
    by that status."""
    running = [str(row[0]) for row in connection.execute(sql.load("progress/running_runs"), {"run_id": run_id})]
    alive = live_runs(connection, running)
    dead = [each for each in running if each not in alive]
    killed = connection.execute(sql.load("progress/mark_killed"), {"run_ids": dead}).fetchall() if dead else []
    connection.commit()
    return [str(row[0]) for row in killed]


def recent(settings: Settings, limit: int = 10, run_id: str | None = None) -> list[dict[str, Any]]:
    """Newest runs first (or one run): each its summary plus run_id, status, started_at, updated_at."""
    query, values = ("progress/one_run", {"run_id": run_id}) if run_id else ("progress/recent", {"limit": limit})
    with source_connection(settings) as connection:
        rows = connection.execute(sql.load(query), values).fetchall()
    return [
        summary
        | {"run_id": rid, "status": status, "started_at": started.isoformat(), "updated_at": updated.isoformat()}
        for rid, status, started, updated, summary in rows
    ]
