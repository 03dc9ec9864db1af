"""How a PostgreSQL warehouse by URL takes a run's chunks (issue 32 item 3): today's COPY in CSV made by
pyarrow (`csv`), ADBC's `adbc_ingest` (binary COPY written in C++ by the ADBC PostgreSQL driver:
`adbc`), and psycopg's binary COPY fed row by row (`psycopg-binary`: psycopg has no column-wise way
to be fed, so `write_row` per row is what it offers).

Each method writes every chunk of the same run (the engine's chunking, load schema and `write_tables`:
repair, inserts and the fence check in one transaction per chunk, committed) into emptied warehouse
tables; rounds interleave the methods (a, b, c, then b, c, a, ...). Per method and round: wall
seconds, the CPU-seconds of this process and of the session's PostgreSQL backend, and the machine's
other load (benchmarks/load_meter.py). After each write the warehouse rows are hashed per table: every
method must leave identical rows.

    python -m benchmarks.pg_ingest --claims 100000 --rounds 5 --output results/<name>.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import psycopg.sql
import pyarrow as pa

from benchmarks import harness, load_meter, pg_adbc
from claims_etl.errors import StageError
from claims_etl.reference.store import read_frames
from claims_etl.stages import load
from claims_etl.stages.extract import read_pending
from claims_etl.stages.isolate import write_chunk
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.stages.write import write_tables
from claims_etl.targets import Target, postgres

RUN_ID = "pg-ingest-bench"
TARGET = "postgresql-copy"


def _connect(method: str) -> Target:
    settings = harness.settings_for(TARGET)
    if method == "csv":
        return postgres.connect(settings)
    if method == "adbc":
        return pg_adbc.connect(harness.TARGETS[TARGET])
    if method == "psycopg-binary":
        session = postgres.connect(settings)
        return RowByRow(connection=session.connection, dialect=session.dialect, secret=session.secret)
    raise SystemExit(f"unknown method {method}")


@dataclass
class RowByRow(postgres.PgTarget):
    """psycopg's binary COPY, its column types set from the warehouse table, fed one row at a time."""

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        copy_rows = psycopg.sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            psycopg.sql.Identifier(*self.table(table).split(".")),
            psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, rows.column_names)),
        )
        types = _column_types(self.connection, table, rows.column_names)
        with self.connection.cursor() as cursor, cursor.copy(copy_rows) as copy:
            copy.set_types(types)
            values = [
                (column.cast(pa.decimal128(38, 5)) if kind == "numeric" else column).to_pylist()
                for column, kind in zip(rows.columns, types, strict=True)
            ]
            for row in zip(*values, strict=True):
                copy.write_row(row)


def _column_types(connection: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str]:
    found = dict(
        connection.execute(
            "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = 'warehouse'"
            " AND table_name = %s",
            [table],
        ).fetchall()
    )
    return [found[column] for column in columns]


def _backend_pid(target: Target) -> int:
    cursor = target.connection.cursor()
    try:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    finally:
        cursor.close()
    target.connection.commit()
    return int(row[0])


def _process_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _reset(admin: psycopg.Connection) -> None:
    """Warehouse tables emptied by TRUNCATE (no dead tuples left for autovacuum), the run's fence row
    back to `running` with zero counts."""
    tables = ", ".join(f"warehouse.{table}" for table in load.WAREHOUSE_TABLES)
    admin.execute(f"TRUNCATE TABLE {tables}")  # type: ignore[arg-type]
    admin.execute("DELETE FROM warehouse.etl_runs WHERE run_id = %s", [RUN_ID])
    admin.execute(
        "INSERT INTO warehouse.etl_runs (run_id, started_at, status, claims_read, claims_priced, claims_rejected,"
        " options) VALUES (%s, now(), 'running', 0, 0, 0, '{}')",
        [RUN_ID],
    )
    admin.execute("CHECKPOINT")


def _digest(admin: psycopg.Connection) -> dict[str, str]:
    """Per warehouse table: row count and an md5 over its rows as text, in key order."""
    digests = {}
    for table in load.WAREHOUSE_TABLES:
        row: Any = admin.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM warehouse.{table} t"  # type: ignore[arg-type]
        ).fetchone()
        digests[table] = f"{row[0]}:{row[1]}"
    return digests


def _chunks() -> list[load.ChunkTables]:
    """The run's chunks as `metered_sink_floor` makes them, fenced as a run's are."""
    settings = harness.settings_for(TARGET)
    pending = read_pending(settings)
    frames = read_frames(settings)
    validated = validate(pending.claims, pending.lines, frames, run_date=settings.effective_run_date())
    priced = price(validated.accepted_claims, validated.accepted_lines, frames)
    at = datetime.now(UTC).replace(microsecond=123456)
    return [
        load.chunk_tables(chunk, RUN_ID, at, fenced=True)
        for chunk in load.chunks(validated.rejected, priced, settings.load_chunk_claims)
    ]


def _one(method: str, chunks: list[load.ChunkTables], admin: psycopg.Connection) -> dict[str, Any]:
    _reset(admin)
    target = _connect(method)
    backend = _backend_pid(target)
    own_before, backend_before = _process_cpu(psutil.Process().pid), _process_cpu(backend)
    before = load_meter.snapshot()
    started = time.perf_counter()
    for chunk in chunks:
        write_tables(target, chunk)
    seconds = time.perf_counter() - started
    window = load_meter.between(before, load_meter.snapshot())
    own_cpu = _process_cpu(psutil.Process().pid) - own_before
    backend_cpu = _process_cpu(backend) - backend_before
    target.close()
    return {
        "method": method,
        "seconds": round(seconds, 4),
        "client_cpu": round(own_cpu, 3),
        "backend_cpu": round(backend_cpu, 3),
        "machine": window.as_dict(),
        "digest": _digest(admin),
    }


def _checks(method: str, chunk: load.ChunkTables, admin: psycopg.Connection) -> dict[str, Any]:
    """The exactly-once duties on this method's session, on the run's last chunk: a fenced run commits
    nothing (the fence check in the chunk's transaction), and a claim with a value the warehouse
    refuses (a 70,000-character NPI; units past its integer column) is isolated and quarantined while
    the rest of the chunk commits (stages/isolate.py)."""
    _reset(admin)
    target = _connect(method)
    admin.execute("UPDATE warehouse.etl_runs SET status = 'failed' WHERE run_id = %s", [RUN_ID])
    try:
        write_tables(target, chunk)
        fenced = "committed"
    except StageError as error:
        fenced = error.message
    row: Any = admin.execute("SELECT count(*) FROM warehouse.priced_claims").fetchone()
    admin.execute("UPDATE warehouse.etl_runs SET status = 'running' WHERE run_id = %s", [RUN_ID])
    claims, lines = chunk.tables["priced_claims"], chunk.tables["priced_claim_lines"]
    npi, units = claims.column("billing_npi").to_pylist(), lines.column("units").to_pylist()
    npi[3], units[100] = "1" * 70_000, 2**40
    poisoned = {
        "priced_claims": claims.set_column(3, "billing_npi", pa.array(npi)),
        "priced_claim_lines": lines.set_column(4, "units", pa.array(units, pa.int64())),
    }
    written = write_chunk(harness.settings_for(TARGET), target, replace(chunk, tables=chunk.tables | poisoned))
    target.close()
    left: Any = admin.execute("SELECT count(*) FROM warehouse.priced_claims").fetchone()
    return {
        "fenced": fenced,
        "rows_after_fenced": row[0],
        "poison_claims": [claims.column("claim_id")[3].as_py(), lines.column("claim_id")[100].as_py()],
        "quarantined": list(written.quarantined),
        "reasons": list(written.reasons),
        "priced_claims_written": left[0],
        "priced_claims_expected": claims.num_rows - len(written.quarantined),
    }


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    spreads = {
        measure: harness.spread([r[measure] for r in rounds]) for measure in ("seconds", "client_cpu", "backend_cpu")
    }
    return spreads | {"others_cores_median": statistics.median(r["machine"]["foreign_cores"] for r in rounds)}


def _order(methods: list[str], round_number: int) -> list[str]:
    shift = round_number % len(methods)
    return methods[shift:] + methods[:shift]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--methods", default="csv,adbc,psycopg-binary")
    parser.add_argument("--reuse", action="store_true", help="the bench database is already seeded")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    if not args.reuse:
        harness.fresh_databases(TARGET, args.claims, args.seed)
    chunks = _chunks()
    rows = sum(chunk.rows for chunk in chunks)
    print(f"{len(chunks)} chunks, {rows} rows")
    rounds: list[dict[str, Any]] = []
    with psycopg.connect(harness.SOURCE_URL, autocommit=True) as admin:
        checks = {method: _checks(method, chunks[-1], admin) for method in methods}
        print(json.dumps(checks, indent=1))
        for method in methods:  # warm-up: imports, first connection, caches
            _one(method, chunks[:1], admin)
        for number in range(args.rounds):
            for method in _order(methods, number):
                result = _one(method, chunks, admin) | {"round": number + 1}
                rounds.append(result)
                print(json.dumps({key: value for key, value in result.items() if key != "digest"}))
        _reset(admin)
        admin.execute("DELETE FROM warehouse.etl_runs WHERE run_id = %s", [RUN_ID])
    digests = {json.dumps(r["digest"], sort_keys=True) for r in rounds}
    summary = {method: _summary([r for r in rounds if r["method"] == method]) for method in methods}
    result = {
        "benchmark": "pg_ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine(),
        "claims": args.claims,
        "chunks": len(chunks),
        "rows": rows,
        "identical_rows": len(digests) == 1,
        "digest": json.loads(next(iter(digests))),
        "summary": summary,
        "checks": checks,
        "rounds": rounds,
    }
    print(json.dumps({"identical_rows": result["identical_rows"], "summary": summary}, indent=1))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
