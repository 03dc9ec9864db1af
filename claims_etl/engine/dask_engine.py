"""The Dask engine (`claims-etl run --engine dask`, `pip install claims-etl[dask]`): the run's claim_id
ranges as tasks on a Dask cluster.

The driver (claims_etl/engine/run.py) leases, plans the ranges and reads the reference frames as for a
local run. Here the frames are broadcast to every worker once, as Arrow-backed Polars frames, and each
task works one range end to end on its own source and target sessions (claims_etl/engine/leases.py), sending
back only its counts and stage timings. Without a scheduler address, a LocalCluster of `dask_workers`
single-threaded processes on this machine.

A worker dying mid-task: the scheduler runs the task again on another worker (up to
`distributed.scheduler.allowed-failures` times); the range's lock and attempt count make the rerun
repair whatever the dead attempt committed. A task's error fails the run like a local one: ranges
already marked stay done, the others stay leased to this run and the next run recovers them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import dask
from dask.distributed import Client, LocalCluster, as_completed

from claims_etl.db.source import source_connection
from claims_etl.engine import stopping
from claims_etl.engine.leases import ClaimRange
from claims_etl.engine.outcomes import RangeOutcome, Tally
from claims_etl.engine.range_work import process_range
from claims_etl.errors import ClaimsEtlError, StageError, driver_message
from claims_etl.faults import Faults
from claims_etl.reference import ReferenceFrames
from claims_etl.settings import Settings
from claims_etl.targets import connect_target

SCHEDULER_TIMEOUT = "10s"


def work_range(
    part: ClaimRange, *, settings: Settings, frames: ReferenceFrames, loaded_at: datetime, faults: Faults
) -> RangeOutcome:
    """One Dask task: one range on this worker's own sessions (the range comes first: client.map);
    `faults`, the run's fault points, pickled to the worker with the settings."""
    with source_connection(settings) as source:
        target = connect_target(settings)
        try:
            return process_range(settings, part, frames, loaded_at, source=source, target=target, faults=faults)
        finally:
            target.close()


@contextmanager
def cluster_client(settings: Settings) -> Iterator[Client]:
    """A client of the cluster at `settings.scheduler`, or of a LocalCluster sized by `dask_workers`."""
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().level))
    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise StageError("dask", f"cannot reach the Dask scheduler: {driver_message(str(error))}") from None
        with client:
            yield client
        return
    # silence_logs: when a LocalCluster closes, a worker whose heartbeat races the scheduler's
    # shutdown logs "Failed to communicate with scheduler during heartbeat" at ERROR, on a run that
    # succeeded (a known distributed race; seen once in CI). A task's failure or a lost worker still
    # reaches this process as an exception and ends the run with its one-line error.
    # The workers' statistical profiler off: every 10 ms it calls sys._current_frames(), which on
    # CPython 3.11 can deadlock with a thread waiting for the GIL on its way back from connectorx (seen in
    # CI: a worker stuck for good in its profiler's garbage collection, the reader thread waiting for the
    # GIL). The Nanny hands this configuration to the worker processes it starts.
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        LocalCluster(
            n_workers=settings.dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def work(
    settings: Settings,
    plan: list[ClaimRange],
    frames: ReferenceFrames,
    loaded_at: datetime,
    tally: Tally,
    outcomes: list[RangeOutcome],
    faults: Faults,
) -> None:
    """Run every range of the plan as a task, appending outcomes as tasks finish (on an error, those
    done so far are there). Progress advances per finished range."""
    if not plan:
        return
    # On a worker a read is not bounded on a side thread (source_reply_timeout_seconds 0): a thread
    # per read returning from connectorx while Dask's profiler samples every stack deadlocks a CPython
    # 3.11 worker (seen in CI). The server's statement timeout and the keepalives still bound it.
    settings = settings.model_copy(update={"partitions": settings.task_partitions(), "source_reply_timeout_seconds": 0})
    with cluster_client(settings) as client:
        shared = client.scatter(frames, broadcast=True, hash=False)
        keys = [f"claims-etl-{part.run_id}-range-{part.number}" for part in plan]
        futures = client.map(
            work_range, plan, key=keys, settings=settings, frames=shared, loaded_at=loaded_at, faults=faults
        )
        try:
            for future in as_completed(futures):
                outcome: RangeOutcome = future.result()
                outcomes.append(outcome)
                for record in outcome.stages:
                    tally(record.stage, outcome.claims_read)
                stopping.check()  # the tasks still running are cancelled; their leases are recovered by the next run
        except ClaimsEtlError:
            client.cancel(futures)
            raise
        except Exception as error:  # KilledWorker (a range killed its workers too often), lost scheduler
            client.cancel(futures)
            raise StageError("dask", f"{type(error).__name__}: {driver_message(str(error))}") from None
    outcomes.sort(key=lambda outcome: outcome.number)
