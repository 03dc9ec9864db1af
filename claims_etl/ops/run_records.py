"""Run bookkeeping in the warehouse: `etl_runs` (one row per run) and `etl_stage_timings`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from claims_etl.errors import ClaimsEtlError, ConfigurationError, TargetError
from claims_etl.ops.alerts import Alert
from claims_etl.ops.metrics import Sample
from claims_etl.ops.timing import StageRecord
from claims_etl.targets import Target

log = logging.getLogger(__name__)


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None)


# SQLSTATEs of a statement naming a table that does not exist: ODBC's (MariaDB, SQL Server) and PostgreSQL's.
_NO_TABLE = ("42S02", "42P01")


def record_start(target: Target, run_id: str, started_at: datetime, options: dict[str, Any]) -> None:
    """The run's etl_runs row: a run's first statement in the warehouse, so a warehouse `db init` has
    not set up is said here, in one line and exit 2 (retrying cannot help; running `db init` does)."""
    options_json = json.dumps(options, sort_keys=True, default=str)
    try:
        target.execute(target.statement("warehouse/run_start"), [run_id, _naive(started_at), "running", options_json])
    except TargetError as error:
        if error.sqlstate not in _NO_TABLE:
            raise
        target.rollback_quietly()
        raise ConfigurationError("the warehouse is not set up (no table etl_runs): run claims-etl db init") from None
    target.connection.commit()


def mark_killed(target: Target, run_ids: Sequence[str], at: datetime) -> None:
    """Best effort: etl_runs rows of runs found killed (`progress_log.mark_killed`) say failed too, if
    they still say running. A warehouse that refuses only leaves them as they were (a debug line)."""
    try:
        target.execute_many(target.statement("warehouse/run_killed"), [[_naive(at), run_id] for run_id in run_ids])
        target.connection.commit()
    except ClaimsEtlError as error:
        target.rollback_quietly()
        log.debug("killed runs not marked in etl_runs: %s", " ".join(str(error).split()))


def record_finish(
    target: Target,
    run_id: str,
    *,
    finished_at: datetime,
    status: str,
    counts: tuple[int, int, int],
    stages: list[StageRecord],
    samples: Sequence[Sample] = (),
    alerts: Sequence[Alert] = (),
) -> None:
    """Final status, counts, every stage's timing, metric samples and alerts, in one transaction."""
    read, priced, rejected = counts
    target.execute(
        target.statement("warehouse/run_finish"), [_naive(finished_at), status, read, priced, rejected, run_id]
    )
    target.execute_many(
        target.statement("warehouse/stage_timing"),
        [[run_id, r.stage, r.seconds, r.rows_in, r.rows_out, r.peak_rss_bytes] for r in stages],
    )
    target.execute_many(
        target.statement("warehouse/run_metric"),
        [[run_id, s.name, json.dumps(s.labels, sort_keys=True), float(s.value)] for s in samples],
    )
    target.execute_many(
        target.statement("warehouse/run_alert"),
        [[run_id, a.name, float(a.value), float(a.threshold), a.message] for a in alerts],
    )
    target.connection.commit()
