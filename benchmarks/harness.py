"""Shared pieces of the benchmarks: fresh databases, a template copy of them, the sink floor, one timed CLI run."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import load_meter
from claims_etl.engine import writers
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.extract import read_pending
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.targets import Target, connect_target

BENCH_DB = os.environ.get("CLAIMS_ETL_BENCH_DB", "claims_bench")
TEMPLATE_DB = f"{BENCH_DB}_template"  # the seeded source kept to copy from (`save_template`)
PG_ADMIN = os.environ.get("CLAIMS_ETL_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCE_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
TARGETS = {
    "mariadb": f"Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Database={BENCH_DB};User=claims_etl;Password=;",
    "postgresql": (
        f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database={BENCH_DB};Uid=postgres;"
        "UseServerSidePrepare=0;BatchSize=100;CommLog=0"
    ),
    # The same PostgreSQL warehouse by URL: loaded by COPY (claims_etl/targets/postgres.py), not over ODBC.
    "postgresql-copy": SOURCE_URL,
}
URL_TARGETS = {"postgresql-copy"}  # TARGETS given as CLAIMS_ETL_TARGET_URL; the others are ODBC strings


RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What a result file records of the machine it was measured on: each session may get another
    kind of host, and seconds compare only on the same one."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(models, platform.processor())


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def env_for(target: str) -> dict[str, str]:
    variable = "CLAIMS_ETL_TARGET_URL" if target in URL_TARGETS else "CLAIMS_ETL_TARGET_ODBC"
    return {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, variable: TARGETS[target]}


def settings_for(target: str) -> Settings:
    if target in URL_TARGETS:
        return Settings(source_url=SOURCE_URL, target_url=TARGETS[target])
    return Settings(source_url=SOURCE_URL, target_odbc=TARGETS[target], target_url=None)


def cli(env: dict[str, str], *args: str) -> str:
    inherited = {key: value for key, value in os.environ.items() if key != "CLAIMS_ETL_TARGET_URL"}  # env picks it
    done = subprocess.run(
        [sys.executable, "-m", "claims_etl", *args], env=inherited | env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"claims-etl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def fresh_databases(target: str, claims: int, seed: int, history: int = 0) -> int:
    """Empty source and target databases, tables created, `claims` seeded; returns the line count.
    With `history`, that many claims are seeded and marked processed first, as a production staging
    database keeps every claim it ever held: what a run reads must not grow with them."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    subprocess.run(
        [
            "mysql",
            "-h",
            "127.0.0.1",
            "-uclaims_etl",
            "-e",
            f"DROP DATABASE IF EXISTS {BENCH_DB}; CREATE DATABASE {BENCH_DB}",
        ],
        check=True,
    )
    env = env_for(target)
    cli(env, "db", "init")
    if history:
        cli(env, "seed", "--claims", str(history), "--seed", str(seed + 1_000))
        with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
            connection.execute("UPDATE staging.claims SET status = 'processed', processed_at = now()")
    cli(env, "seed", "--claims", str(claims), "--seed", str(seed))
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")  # a nightly source is analyzed; fresh seeds are not
        row: Any = connection.execute(
            "SELECT count(*) FROM staging.claim_lines AS l JOIN staging.claims AS c USING (claim_id) "
            "WHERE c.status = 'pending'"
        ).fetchone()
    return int(row[0])


def settle() -> None:
    """VACUUM ANALYZE and CHECKPOINT the benchmark database before a timed side: planner statistics
    current, and the dirty pages of seeding or of a template copy written out now, not by a checkpoint
    during the next timing."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


def save_template() -> None:
    """Keep the freshly seeded, analyzed source (and a PostgreSQL warehouse's empty tables) as a template
    database, so each later round starts from the same state by a file copy instead of a re-seed."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEMPLATE_DB} TEMPLATE {BENCH_DB}")


def restore_template() -> None:
    """Source back to the template's state, MariaDB warehouse tables emptied: as `fresh_databases` left them."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB} TEMPLATE {TEMPLATE_DB}")
    mysql = ["mysql", "-h", "127.0.0.1", "-uclaims_etl", "-N", BENCH_DB, "-e"]
    tables = subprocess.run([*mysql, "SHOW TABLES"], check=True, capture_output=True, text=True).stdout.split()
    if tables:
        subprocess.run([*mysql, "".join(f"TRUNCATE TABLE {table};" for table in tables)], check=True)


def drop_template() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")


def sink_floor(target: str) -> float:
    """Seconds the target's bulk path (turbodbc, or COPY for a URL target) takes to insert the run's
    output rows alone, with the engine's options, load schema, chunking and writer processes
    (connected before the clock starts): the write a run cannot avoid. Leaves the warehouse empty
    again."""
    return metered_sink_floor(target)[0]


def metered_sink_floor(target: str) -> tuple[float, load_meter.Window]:
    """`sink_floor`, with who used the CPU while it was timed (benchmarks/load_meter.py)."""
    settings = settings_for(target)
    pending = read_pending(settings)
    frames = read_frames(settings)
    validated = validate(pending.claims, pending.lines, frames, run_date=settings.effective_run_date())
    priced = price(validated.accepted_claims, validated.accepted_lines, frames)
    at = datetime.now(UTC)
    chunks = [
        load.chunk_tables(c, "floor", at) for c in load.chunks(validated.rejected, priced, settings.load_chunk_claims)
    ]
    sink = connect_target(settings)
    empty_warehouse(sink)
    with writers.open_writer(settings, sink, wait_connected=True) as writer:
        before = load_meter.snapshot()
        started, writing = time.perf_counter(), deque[Future[Any]]()
        for number, chunk in enumerate(chunks, start=1):
            writing.append(writer.submit(chunk, number))
            if len(writing) >= writer.connections:
                writing.popleft().result()
        for chunk_written in writing:
            chunk_written.result()
        seconds = time.perf_counter() - started
        window = load_meter.between(before, load_meter.snapshot())
    empty_warehouse(sink)
    sink.close()
    return seconds, window


def empty_warehouse(sink: Target) -> None:
    """TRUNCATE, not DELETE: InnoDB purges deleted rows in the background, and after the floor's
    362,500 rows that purge took 1.1-1.3 CPU-s of mariadbd in the seconds the timed run then ran in
    (PostgreSQL's autovacuum would do the same to its dead tuples). TRUNCATE leaves nothing behind."""
    for table in load.WAREHOUSE_TABLES:
        sink.execute(f"TRUNCATE TABLE {sink.table(table)}")
    sink.connection.commit()


def timed_run(target: str, engine: str = "local", extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `claims-etl run --json` in its own process (so peak RSS is the run's own; a Dask run's
    LocalCluster starts and stops inside it, and is timed with it). `extra_env`: settings for this run
    alone (the gate's injected slowdown)."""
    started = time.perf_counter()
    env = env_for(target) | (extra_env or {})
    summary: dict[str, Any] = json.loads(cli(env, "run", "--json", "--engine", engine))
    summary["wall_seconds"] = time.perf_counter() - started
    return summary
