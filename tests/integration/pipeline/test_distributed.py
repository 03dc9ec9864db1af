"""The Dask engine on a real LocalCluster (2 worker processes) against the real databases: the same
warehouse rows as a local run, and every claim exactly once when a worker dies mid-range."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psycopg
import pytest
from dask.distributed import Client, LocalCluster

import claims_etl
from claims_etl.dev import fault_hooks
from claims_etl.engine import leases
from claims_etl.engine.outcomes import RunResult
from claims_etl.errors import ConfigurationError
from claims_etl.settings import ODBC_USER_VARIABLE, Settings
from claims_etl.synthetic import seed
from claims_etl.targets import connect_target, odbc_config
from tests.db import MARIADB_HOST, SOURCE_URL, cli_env, make_settings, read_source, run_cli
from tests.helpers import assert_exactly_once_and_exact, assert_reconciled
from tests.seeding import seeded_fixture

Reader = Callable[[str], pl.DataFrame]
CLAIMS = 1_200
# The warehouse's content, without what names the run (run_id, timestamps).
SNAPSHOT = {
    "priced_claims": "SELECT claim_id, batch_id, billing_npi, mac, locality, place_of_service, line_count, "
    "total_charge, total_allowed FROM warehouse.priced_claims ORDER BY claim_id",
    "priced_claim_lines": "SELECT claim_id, line_number, procedure_code, modifier_1, units, charge, facility, "
    "fee_schedule_amount, adjustment_factor, allowed_amount, pricing_note FROM warehouse.priced_claim_lines "
    "ORDER BY claim_id, line_number",
    "rejected_claims": "SELECT claim_id, batch_id, rule_ids FROM warehouse.rejected_claims ORDER BY claim_id",
}


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster with both workers up: after a test killed one, its nanny may still be
    starting the new one (under load, long enough for the next test to find a single worker)."""
    with Client(local_cluster) as client:
        client.wait_for_workers(2, timeout=120)
    return local_cluster


seeded = seeded_fixture(CLAIMS, seed=23, invalid_rate=0.15)


def _on_dask(settings: Settings, cluster: LocalCluster, **more: object) -> Settings:
    return settings.model_copy(
        update={"engine": "dask", "scheduler": cluster.scheduler_address, "range_claims": 250} | more
    )


def _run_with_faults(settings: Settings) -> RunResult:
    """A run whose fault settings fire (the crash tests' hooks, claims_etl/dev/fault_hooks.py)."""
    return claims_etl.run(settings, faults=fault_hooks.from_settings(settings))


def _snapshot(read_target: Reader) -> dict[str, list[tuple[object, ...]]]:
    return {table: read_target(query).rows() for table, query in SNAPSHOT.items()}


def _start_over(read_target: Reader, settings: Settings) -> None:
    """Every claim pending again and the warehouse tables empty, for a second run of the same claims."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("UPDATE staging.claims SET status = 'pending', run_id = NULL, processed_at = NULL")
    target = connect_target(settings, autocommit=True)
    try:
        for table in SNAPSHOT:
            target.execute(f"DELETE FROM {target.table(table)}")
    finally:
        target.close()
    assert all(not rows for rows in _snapshot(read_target).values())


def _assert_every_claim_once(read_target: Reader) -> None:
    ids = pl.concat(
        [read_target(f"SELECT claim_id FROM warehouse.{table}") for table in ("priced_claims", "rejected_claims")]
    ).get_column("claim_id")
    assert ids.len() == CLAIMS and ids.n_unique() == CLAIMS
    assert read_source("SELECT count(*) FROM staging.claims WHERE status = 'pending'").item() == 0
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0


def test_dask_run_loads_the_same_rows_as_a_local_run(
    seeded: Settings, cluster: LocalCluster, read_target: Reader
) -> None:
    local = claims_etl.run(seeded)
    expected = _snapshot(read_target)
    _start_over(read_target, seeded)

    distributed = claims_etl.run(_on_dask(seeded, cluster))

    assert distributed.status == "succeeded"
    assert (distributed.claims_read, distributed.claims_priced, distributed.claims_rejected) == (
        local.claims_read, local.claims_priced, local.claims_rejected,
    )  # fmt: skip
    assert _snapshot(read_target) == expected
    _assert_every_claim_once(read_target)
    assert [r["range"] for r in distributed.ranges] == [1, 2, 3, 4, 5]
    assert len({r["worker"] for r in distributed.ranges}) == 2  # both workers took ranges
    assert {s.stage for s in distributed.stages} == {"lease", "reference", "extract", "validate", "price", "load"}
    assert distributed.metrics.rejections_by_rule == local.metrics.rejections_by_rule
    per_range = read_target(
        "SELECT labels FROM warehouse.etl_run_metrics "
        f"WHERE run_id = '{distributed.run_id}' AND name = 'claims_etl_range_stage_seconds'"
    )
    assert per_range.height == 5 * 4  # every range's four stage timings are stored with the run


def test_a_worker_killed_after_its_warehouse_commit_leaves_every_claim_once(
    seeded: Settings, cluster: LocalCluster, read_target: Reader, tmp_path: Path
) -> None:
    """The worst moment: a range's first chunk is committed in the warehouse, not yet marked in the
    source, when its worker is SIGKILLed. The scheduler reruns the range on the other worker (or the
    restarted one), which must delete what the dead attempt wrote before loading the range again."""
    expected_run = claims_etl.run(seeded)
    expected = _snapshot(read_target)
    _start_over(read_target, seeded)

    once = tmp_path / "fault-fired"
    faulty = _on_dask(seeded, cluster, fault="after_commit:1", fault_once_file=str(once), load_chunk_claims=100)
    result = _run_with_faults(faulty)

    assert once.exists()  # the fault did fire: a worker died
    assert result.status == "succeeded" and result.claims_read == expected_run.claims_read
    assert max(r["attempt"] for r in result.ranges) == 2
    assert _snapshot(read_target) == expected
    _assert_every_claim_once(read_target)


def test_a_retried_range_counts_the_rejections_its_dead_attempt_marked(
    seeded: Settings, cluster: LocalCluster, read_target: Reader, tmp_path: Path
) -> None:
    """Killed after its third chunk's commit, a range's first attempt has marked its first chunks
    already; the second attempt works only the rest, yet the run's rejections by rule are whole."""
    expected_run = claims_etl.run(seeded)
    _start_over(read_target, seeded)

    once = tmp_path / "fault-fired"
    faulty = _on_dask(seeded, cluster, fault="after_commit:3", fault_once_file=str(once), load_chunk_claims=50)
    result = _run_with_faults(faulty)

    assert once.exists() and max(r["attempt"] for r in result.ranges) == 2
    assert result.claims_rejected == expected_run.claims_rejected
    assert result.metrics.rejections_by_rule == expected_run.metrics.rejections_by_rule
    _assert_every_claim_once(read_target)


def test_a_range_finished_by_a_worker_that_then_died_is_counted_once_and_not_loaded_again(
    seeded: Settings, cluster: LocalCluster, read_target: Reader, tmp_path: Path
) -> None:
    """The worst moment for the retry's bookkeeping: a range's worker marked every claim and released
    the lease, then was SIGKILLed before handing its outcome to the scheduler. The rerun finds no lease
    over the range and none of another run: it reports what the dead attempt marked (attempt 0, no stage
    seconds of its own) and writes nothing, so the run's counts and rows are a clean run's."""
    expected_run = claims_etl.run(seeded)
    expected = _snapshot(read_target)
    _start_over(read_target, seeded)

    once = tmp_path / "fault-fired"
    result = _run_with_faults(_on_dask(seeded, cluster, fault="after_release", fault_once_file=str(once)))

    assert once.exists()  # a worker did die with its range finished
    assert result.status == "succeeded"
    assert (result.claims_read, result.claims_priced, result.claims_rejected) == (
        expected_run.claims_read, expected_run.claims_priced, expected_run.claims_rejected,
    )  # fmt: skip
    assert result.metrics.rejections_by_rule == expected_run.metrics.rejections_by_rule
    (finished,) = [r for r in result.ranges if r["attempt"] == 0]
    assert finished["claims"] > 0 and not finished["seconds"]
    assert sum(r["claims"] for r in result.ranges) == CLAIMS  # the finished range's claims count once
    assert sorted(r["range"] for r in result.ranges) == [1, 2, 3, 4, 5]
    assert _snapshot(read_target) == expected
    _assert_every_claim_once(read_target)


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cli_env(settings, **env), *args)


def test_cli_dask_engine_starts_a_local_cluster_of_its_own(pg_settings: Settings, tmp_path: Path) -> None:
    seed(pg_settings, 300, seed=29, invalid_rate=0.1, directory=tmp_path)
    done = _cli(pg_settings, "--engine", "dask", CLAIMS_ETL_DASK_WORKERS="2", CLAIMS_ETL_RANGE_CLAIMS="100")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["claims_read"] == 300 and [r["range"] for r in summary["ranges"]] == [1, 2, 3]
    assert not [line for line in done.stderr.splitlines() if "error" in line.lower()], done.stderr
    assert read_source("SELECT count(*) FROM staging.claims WHERE status = 'pending'").item() == 0


def test_an_unreachable_scheduler_fails_in_one_line_and_a_rerun_finishes(pg_settings: Settings, tmp_path: Path) -> None:
    seed(pg_settings, 300, seed=31, invalid_rate=0.1, directory=tmp_path)
    failed = _cli(pg_settings, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: dask: cannot reach the Dask scheduler"), failed.stderr

    rerun = _cli(pg_settings)  # the failed run's leases are recovered: nothing lost, nothing twice
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["claims_read"], summary["claims_recovered"]) == (300, 300)
    assert read_source("SELECT count(*) FROM staging.claims WHERE status = 'pending'").item() == 0


def test_the_dask_engine_without_its_extra_is_a_configuration_error(
    pg_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(pg_settings, 50, seed=37, invalid_rate=0.0, directory=tmp_path)
    monkeypatch.setitem(sys.modules, "claims_etl.engine.dask_engine", None)  # as if dask were not installed
    with pytest.raises(ConfigurationError, match=r"claims-etl\[dask\]") as raised:
        claims_etl.run(pg_settings.model_copy(update={"engine": "dask"}))
    assert raised.value.exit_code == 2


def _innodb_deadlocks() -> int:
    """MariaDB's count of deadlocks it has broken since it started (the server's, every database's)."""
    shown = subprocess.run(
        ["mysql", "-h", MARIADB_HOST, "-uclaims_etl", "-N", "-e", "SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(shown.stdout.split()[-1])


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_two_recovered_ranges_repairing_at_once_on_mariadb_survive_the_deadlock(
    seeded: Settings, cluster: LocalCluster, read_target: Reader
) -> None:
    """A run died right after leasing two ranges; the next run, on two Dask workers, recovers both at
    once. Each chunk's repair DELETE (of rows the dead run never wrote) takes gap locks, and both pause
    there (`pause_after_repair`) so that both hold them before either inserts: the inserts then wait on
    each other and MariaDB breaks the deadlock (1213) by rolling one chunk back. That chunk is written
    again and the run succeeds, every claim once."""
    with psycopg.connect(SOURCE_URL) as source:
        dead = leases.take(source, seeded, "20260101T000000-deadbeef", claims_per_range=CLAIMS // 2)
    assert (dead.new, read_source("SELECT count(*) FROM staging.range_leases").item()) == (CLAIMS, 2)
    deadlocks = _innodb_deadlocks()

    result = _run_with_faults(_on_dask(seeded, cluster, fault="pause_after_repair", fault_pause=2.0))

    assert result.status == "succeeded" and result.claims_recovered == CLAIMS
    assert len({r["worker"] for r in result.ranges}) == 2  # the two ranges were loaded side by side
    assert _innodb_deadlocks() > deadlocks  # the interleaving did deadlock, and the run got past it
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)
    assert_reconciled(seeded, claims=CLAIMS)


# A worker "on another machine": its own /tmp (a fresh tmpfs in a mount namespace of its own: the
# driver's private ODBC copy is not there), HOME and TMPDIR, and none of the driver's ODBC variables.
# A checkout under /tmp (a CI's clean clone) is bound back in at its path first: the worker runs its
# virtualenv's Python, which the fresh /tmp would otherwise hide (no worker ever arrived).
_OTHER_HOST = (
    'keep=$(mktemp -d -p /run) && mount --bind "$CHECKOUT" "$keep" && mount -t tmpfs tmpfs /tmp'
    ' && mkdir -p "$CHECKOUT" && mount --bind "$keep" "$CHECKOUT"'
    ' && mkdir /tmp/home && HOME=/tmp/home TMPDIR=/tmp exec "$0" "$@"'
)


def _private_mounts_work() -> bool:
    probe = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /tmp"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
    except OSError:
        return False


@contextmanager
def _workers_elsewhere(address: str, count: int) -> Iterator[None]:
    """`count` Dask workers of the scheduler at `address`, each as if on a machine of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("ODBCSYSINI", "ODBCINSTINI", ODBC_USER_VARIABLE)}
    checkout = str(Path(__file__).parents[3])
    env |= {"PYTHONPATH": checkout, "CHECKOUT": checkout, "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
    worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"]
    started = [
        subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _OTHER_HOST, *worker],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        with Client(address, timeout="10s") as client:
            client.wait_for_workers(count, timeout=60)
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.skipif(not _private_mounts_work(), reason="needs a private mount namespace (unshare --mount)")
@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_workers_on_other_machines_make_their_own_odbc_copy_from_the_users_odbcsysini(
    seeded: Settings, read_target: Reader
) -> None:
    """The driver's settings are read after its process pointed ODBCSYSINI at its private copy under
    its /tmp; its workers have their own /tmp, HOME and TMPDIR. What they get is the user's ODBCSYSINI
    (default /etc), from which each makes its own copy, drivers included, and the run loads every claim."""
    private = odbc_config.use_private_config(seeded)
    assert private is not None and os.environ["ODBCSYSINI"] == str(private)
    with LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as scheduler:
        driver = make_settings("mysql", engine="dask", scheduler=scheduler.scheduler_address, range_claims=400)
        assert driver.odbc_sysini != str(private)  # the user's value travels, not this machine's copy
        with _workers_elsewhere(scheduler.scheduler_address, 2), Client(scheduler) as client:
            assert not any(client.run(os.path.exists, str(private)).values())  # they cannot see the driver's copy
            result = claims_etl.run(driver)

    assert result.status == "succeeded" and result.claims_read == CLAIMS
    assert len({r["worker"] for r in result.ranges}) == 2
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)
    assert_reconciled(seeded, claims=CLAIMS)
