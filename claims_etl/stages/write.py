"""One chunk's warehouse transaction (`write_tables`): the repair's DELETE of the claims' earlier rows,
the inserts, and for a run's chunk the fencing token checked last before the commit; a transaction
the warehouse rolled back whole for a deadlock is written again. Which claims of a chunk the
warehouse cannot take is stages/isolate.py's question; the source marking that follows each commit
is claims_etl/engine/marking.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from claims_etl.errors import StageError, TargetError
from claims_etl.stages.load import WAREHOUSE_TABLES, ChunkTables
from claims_etl.targets import Target

log = logging.getLogger(__name__)

FaultHook = Callable[[str], None]


def no_checkpoint(_: str) -> None:
    """The checkpoint of a write without fault injection."""
    return


# A chunk's transaction chosen as a deadlock's victim (MariaDB 1213 and SQL Server 1205, SQLSTATE 40001;
# PostgreSQL 40P01) or failing to serialize (40001) was rolled back whole by the warehouse: nothing of
# it committed, so it is written again from its start, a few times with a growing, jittered pause. Two
# recovered ranges loading at once deadlock so on MariaDB: each repair DELETE takes gap locks the
# other's inserts wait for. A lost connection is never retried here: its commit may have happened.
DEADLOCK_ATTEMPTS = 5
_ROLLED_BACK_WHOLE = ("deadlock", "state: 40001", "could not serialize access")


def rolled_back_whole(error: BaseException) -> bool:
    """Whether the warehouse rolled the whole chunk transaction back (a deadlock or serialization
    failure: `_ROLLED_BACK_WHOLE`), so writing the chunk again is safe.

    >>> rolled_back_whole(TargetError("load", "warehouse insert failed: state: 40001 ... Deadlock found"))
    True
    >>> rolled_back_whole(TargetError("load", "warehouse insert failed: Server has gone away"))
    False
    """
    return isinstance(error, TargetError) and any(hint in error.message.lower() for hint in _ROLLED_BACK_WHOLE)


def write_tables(
    target: Target, chunk: ChunkTables, checkpoint: FaultHook = no_checkpoint, *, commit: bool = True
) -> int:
    """Write one chunk in one target transaction; returns rows written. Rolls back on failure, and
    writes it again when the warehouse rolled it back for a deadlock (`rolled_back_whole`, at most
    DEADLOCK_ATTEMPTS in all). `checkpoint` is called at named points (fault injection in crash tests).
    The target inserts by its own bulk path (ODBC parameter arrays, or COPY on a PostgreSQL URL:
    targets/postgres.py)."""
    import tenacity  # noqa: PLC0415  (as db/source.retry_connecting: imported where it is used)

    def again(state: tenacity.RetryCallState) -> None:
        log.info(
            "claims [%d, %d]: the warehouse rolled the chunk back for a deadlock; writing it again (attempt %d of %d)",
            chunk.low, chunk.high, state.attempt_number + 1, DEADLOCK_ATTEMPTS,
        )  # fmt: skip

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(rolled_back_whole),
        stop=tenacity.stop_after_attempt(DEADLOCK_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=0.2, max=3) + tenacity.wait_random(0, 0.2),
        before_sleep=again,
        reraise=True,
    )
    return retrying(_write_once, target, chunk, checkpoint, commit=commit)


def _write_once(target: Target, chunk: ChunkTables, checkpoint: FaultHook, *, commit: bool) -> int:
    """One attempt at the chunk's transaction (`write_tables`)."""
    with target.errors("warehouse insert failed"):
        try:
            if chunk.history is not None and chunk.history.num_rows:
                target.insert_rows("priced_claim_line_history", chunk.history)
            if chunk.recovered.num_rows:
                target.delete_claims(WAREHOUSE_TABLES, chunk.recovered)
                checkpoint("pause_after_repair")  # tests/integration/pipeline/test_distributed.py: two repairs at once
            for table, arrow in chunk.tables.items():
                target.insert_rows(table, arrow)
                checkpoint("during_write")
                checkpoint("pause_during_write")
            if not commit:  # a trial write (stages/isolate.py): only whether the warehouse takes the rows
                target.rollback_quietly()
                return chunk.rows
            if chunk.fence is not None:
                _check_fence(target, chunk, chunk.fence)
            target.commit()
        except BaseException:
            target.rollback_quietly()
            raise
    return chunk.rows


def _check_fence(target: Target, chunk: ChunkTables, run_id: str) -> None:
    """The fencing token, checked inside the chunk's warehouse transaction, last before its commit:
    the run's etl_runs row must still say `running` (it also counts the chunk in). A run that took this
    run's leases over set it `failed` (claims_etl/engine/leases.fence) before writing anything, so this run commits
    nothing after that; and a takeover's fence waits for this row lock, so a chunk that passed here
    commits before the taking-over run deletes its rows (docs/design.md, Exactly once)."""
    counts = [
        chunk.claims,
        chunk.tables["priced_claims"].num_rows if "priced_claims" in chunk.tables else 0,
        chunk.tables["rejected_claims"].num_rows if "rejected_claims" in chunk.tables else 0,
        run_id,
    ]
    if target.fenced(counts):
        raise StageError("load", f"run {run_id} was taken over by another run (its lock was lost): chunk not committed")
