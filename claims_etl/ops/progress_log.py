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
