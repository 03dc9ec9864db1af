"""The PostgreSQL warehouse given by URL (claims_etl/targets/postgres.py): a chunk written by COPY reads back
value for value as the load schema holds it (exact cents and factors, timestamps to the microsecond,
text with commas, quotes, newlines and backslashes, empty strings apart from NULLs), the same rows the
psqlODBC path writes; the URL selects the target and its errors carry no password."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from claims_etl import targets
from claims_etl.errors import ConfigurationError, TargetError
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.write import write_tables
from claims_etl.targets import PgTarget
from tests.db import SOURCE_URL, TEST_DB, _reset, make_settings

TEXTS = [
    "plain", "a,b", 'say "hi"', "two\nlines", "cr\r\nlf", "\\.", "\\N", "back\\slash", "", " lead ", "ünï ✓", "it's",
]  # fmt: skip
CENTS = ["0.00", "-12.05", "9999999999.99", "0.01", "123.40", "-0.10"]
AT = datetime(2026, 12, 2, 7, 1, 2, 123456)


def _column(values: list[Any], n: int) -> list[Any]:
    return [values[i % len(values)] for i in range(n)]


def _chunk(run_id: str) -> load.ChunkTables:
    n = len(TEXTS)
    ids = list(range(1, n + 1))
    tables = {
        "priced_claims": {
            "claim_id": ids, "batch_id": TEXTS, "run_id": [run_id] * n, "billing_npi": ["1234567893"] * n,
            "mac": ["01112"] * n, "locality": ["05"] * n, "place_of_service": ["11"] * n, "line_count": [2] * n,
            "total_charge": _column(CENTS, n), "total_allowed": _column(CENTS[::-1], n), "priced_at": [AT] * n,
        },
        "priced_claim_lines": {
            "claim_id": ids, "line_number": [1] * n, "procedure_code": ["99214"] * n,
            "modifier_1": _column([None, "", "25", "5,", '"'], n), "units": _column([1, 3, 99], n),
            "charge": _column(CENTS, n), "facility": _column([0, 1], n), "fee_schedule_amount": _column(CENTS, n),
            "adjustment_factor": _column(["1.00000", "0.98765", "0.00001"], n), "allowed_amount": _column(CENTS, n),
            "pricing_note": [text[:16] for text in TEXTS], "run_id": [run_id] * n,
            "rvu_release": _column(["2026A", None, ""], n), "cf_kind": _column(["non_qp", "qp"], n),
        },
        "rejected_claims": {
            "claim_id": [id_ + 100 for id_ in ids], "batch_id": TEXTS[::-1], "run_id": [run_id] * n,
            "rule_ids": _column(["V01", "V01,V14", "V15"], n), "rejected_at": [AT] * n,
        },
        "claim_warnings": {"claim_id": ids, "rule_id": _column(["W01", "X,1", ""], n), "run_id": [run_id] * n},
    }  # fmt: skip
    arrow = {name: pa.table(columns, schema=load.LOAD_SCHEMAS[name]) for name, columns in tables.items()}
    return load.ChunkTables(tables=arrow, recovered=pa.table({"claim_id": pa.array([], pa.int64())}))


def _expected(chunk: load.ChunkTables) -> dict[str, list[tuple[Any, ...]]]:
    """The rows as PostgreSQL must return them: decimal strings as Decimals, all else as written."""
    money = {"total_charge", "total_allowed", "charge", "fee_schedule_amount", "adjustment_factor", "allowed_amount"}
    expected = {}
    for name, table in chunk.tables.items():
        columns = [[Decimal(v) for v in c.to_pylist()] if n in money else c.to_pylist() for n, c in zip(
            table.column_names, table.columns, strict=True)]  # fmt: skip
        expected[name] = sorted(zip(*columns, strict=True), key=lambda row: (row[0], str(row[1])))
    return expected


def _read_back(chunk: load.ChunkTables) -> dict[str, list[tuple[Any, ...]]]:
    read = {}
    with psycopg.connect(SOURCE_URL) as connection:
        for name, table in chunk.tables.items():
            # test-only read of the warehouse tables the chunk wrote
            rows = connection.execute(f"SELECT {', '.join(table.column_names)} FROM warehouse.{name}").fetchall()
            read[name] = sorted(rows, key=lambda row: (row[0], str(row[1])))
    return read


@pytest.mark.parametrize("target", ["postgresql-copy", "postgresql"], ids=["copy", "psqlodbc"])
def test_a_chunk_reads_back_value_for_value(databases: dict[str, bool], target: str) -> None:
    settings = make_settings(target)
    _reset(settings)
    chunk = _chunk("run-h22")
    session = targets.connect_target(settings)
    try:
        assert isinstance(session, PgTarget) == (target == "postgresql-copy")
        assert write_tables(session, chunk) == chunk.rows
    finally:
        session.close()
    assert _read_back(chunk) == _expected(chunk)


def test_a_repair_deletes_only_the_dead_runs_rows_before_the_copy(databases: dict[str, bool]) -> None:
    settings = make_settings("postgresql-copy")
    _reset(settings)
    again = _chunk("new-run").without(pa.array(range(3, 200), pa.int64()))  # claims 1 and 2 only
    session = targets.connect_target(settings)
    try:
        write_tables(session, _chunk("dead-run"))
        with pytest.raises(TargetError, match="duplicate key"):  # unrepaired: refused, and rolled back whole
            write_tables(session, again)
        # the dead run's rows of claims 1 and 2 go; a pair that matches no row deletes nothing
        repairs = pa.table(
            {"claim_id": [1, 2, 3], "run_id": ["dead-run", "dead-run", "live-run"]}, schema=load.REPAIR_SCHEMA
        )
        assert write_tables(session, replace(again, recovered=repairs)) == again.rows
    finally:
        session.close()
    with psycopg.connect(SOURCE_URL) as connection:
        for table in ("priced_claims", "priced_claim_lines", "claim_warnings"):
            runs = connection.execute(f"SELECT claim_id, run_id FROM warehouse.{table} ORDER BY claim_id").fetchall()
            assert runs == [(1, "new-run"), (2, "new-run")] + [(i, "dead-run") for i in range(3, len(TEXTS) + 1)]


def test_a_target_url_selects_the_copy_target_and_its_errors_carry_no_password(databases: dict[str, bool]) -> None:
    assert targets.target_dialect(make_settings("postgresql-copy")) == "postgresql"
    wrong = Settings(target_url="mysql://etl@127.0.0.1/x")
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        targets.connect_target(wrong)
    unreachable = Settings(target_url=f"postgresql://postgres:Pw-1234@127.0.0.1:5432/nope_{TEST_DB}")
    with pytest.raises(TargetError, match="cannot reach the warehouse") as raised:
        targets.connect_target(unreachable)
    assert "Pw-1234" not in str(raised.value)


def test_the_copy_target_sends_the_query_files_with_psycopg_markers() -> None:
    target = PgTarget(connection=None, dialect="postgresql", secret="")
    delete = target.statement("warehouse/delete_claims", table="rejected_claims")
    assert delete == "DELETE FROM warehouse.rejected_claims WHERE claim_id = %s"
    repair = target.statement("pg_warehouse/delete_run_claims", table="priced_claims")
    assert "unnest(%s::bigint[], %s::text[])" in repair and "?" not in repair
