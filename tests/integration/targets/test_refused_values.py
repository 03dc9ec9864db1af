"""A value the warehouse refuses shows in no message, on every target (PostgreSQL by COPY, psqlODBC,
MariaDB): the TargetError of a write the warehouse refuses, where isolation does not take it over (a
chunk that is not a run's), keeps its SQLSTATE, words and names but not the value that COPY's context,
PostgreSQL's primary message, its DETAIL or MariaDB's duplicate entry quote; and a run whose chunk the
warehouse refuses wholesale (a column narrower than the contract's: more claims than isolation
quarantines) fails with that message, the value in none of its stderr, its result or its run log."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from claims_etl import targets
from claims_etl.errors import TargetError
from claims_etl.settings import Settings
from claims_etl.stages import load
from claims_etl.stages.isolate import MAX_REFUSED, refusal_reason
from claims_etl.stages.write import write_tables
from claims_etl.synthetic import seed
from tests.db import ALL_TARGET_NAMES, cli_env, read_source, run_cli

pytestmark = pytest.mark.parametrize("target_name", ALL_TARGET_NAMES, indirect=True)

CLAIM = 770_077_007
NPI = "7734099001"
LONG_NPI = "PHI7734NPI00"  # 12 characters for billing_npi varchar(10): COPY's context quotes it
UNITS = 1_099_511_627_776  # 2^40 for units integer: PostgreSQL's message quotes it
AT = datetime(2026, 12, 2, 7, 1, 2)


def _chunk(npi: str = NPI, units: int = 1) -> load.ChunkTables:
    """One claim of one line, not a run's (no fence): a refused write is the caller's error."""
    tables = {
        "priced_claims": {
            "claim_id": [CLAIM], "batch_id": ["b"], "run_id": ["r"], "billing_npi": [npi], "mac": ["01112"],
            "locality": ["05"], "place_of_service": ["11"], "line_count": [1], "total_charge": ["1.00"],
            "total_allowed": ["1.00"], "priced_at": [AT],
        },
        "priced_claim_lines": {
            "claim_id": [CLAIM], "line_number": [1], "procedure_code": ["99214"], "modifier_1": [None],
            "units": [units], "charge": ["1.00"], "facility": [0], "fee_schedule_amount": ["1.00"],
            "adjustment_factor": ["1.00000"], "allowed_amount": ["1.00"], "pricing_note": [""], "run_id": ["r"],
            "rvu_release": ["2026A"], "cf_kind": ["non_qp"],
        },
    }  # fmt: skip
    arrow = {name: pa.table(columns, schema=load.LOAD_SCHEMAS[name]) for name, columns in tables.items()}
    return load.ChunkTables(tables=arrow, recovered=pa.table({"claim_id": pa.array([], pa.int64())}), claims=1)


def _refused(settings: Settings, *chunks: load.ChunkTables) -> TargetError:
    """The error of writing the last of `chunks`, the others written first."""
    target = targets.connect_target(settings)
    try:
        for chunk in chunks[:-1]:
            write_tables(target, chunk)
        with pytest.raises(TargetError) as raised:
            write_tables(target, chunks[-1])
    finally:
        target.close()
    return raised.value


@pytest.mark.parametrize(
    ("refusal", "states", "column"),
    [
        ("too-long", ("22001",), "billing_npi"),
        ("out-of-range", ("22003",), "units"),
        ("duplicate", ("23505", "23000"), None),
    ],
)
def test_a_refused_write_keeps_its_sqlstate_and_names_and_shows_no_value(
    settings: Settings, target_name: str, refusal: str, states: tuple[str, ...], column: str | None
) -> None:
    chunks = {
        "too-long": [_chunk(npi=LONG_NPI)],
        "out-of-range": [_chunk(units=UNITS)],
        "duplicate": [_chunk(), _chunk()],  # PostgreSQL's DETAIL and MariaDB's entry quote the key
    }[refusal]
    error = _refused(settings, *chunks)
    shown = str(error)
    assert error.sqlstate in states and error.refused_value, shown
    assert error.sqlstate in shown  # psycopg's text has none: the engine names it
    for value in (LONG_NPI, str(UNITS), str(CLAIM)):
        assert value not in shown
    reason = refusal_reason(error)
    assert error.sqlstate in reason
    if column is not None and target_name != "postgresql":  # psqlODBC's message names no column
        assert f"column {column}" in reason, reason


def test_a_run_whose_chunk_the_warehouse_refuses_wholesale_fails_without_a_value(
    settings: Settings, target_name: str, tmp_path: Path
) -> None:
    claims = MAX_REFUSED + 20
    seed(settings, claims, seed=5, invalid_rate=0.0, directory=tmp_path)
    target = targets.connect_target(settings, autocommit=True)
    try:  # the next test's reset builds the table again (tests/db.py)
        narrower = "MODIFY billing_npi varchar(4)" if target_name == "mysql" else "ALTER billing_npi TYPE varchar(4)"
        target.execute(f"ALTER TABLE {target.table('priced_claims')} {narrower}")
    finally:
        target.close()
    npis = read_source("SELECT DISTINCT billing_npi FROM staging.claims").get_column("billing_npi").to_list()
    env = cli_env(settings, CLAIMS_ETL_LOG_FORMAT="json")
    results = tmp_path / "results.json"
    failed = run_cli(env, "--results", str(results))
    assert failed.returncode == 1, failed.stderr
    assert "refuses over 100 claims" in failed.stderr and "22001" in failed.stderr, failed.stderr
    result: dict[str, Any] = json.loads(results.read_text())
    logged = read_source("SELECT summary::text AS summary FROM staging.etl_run_log").get_column("summary")
    assert "refuses over 100 claims" in result["error"]["message"]
    quarantined = read_source("SELECT count(*) AS n FROM staging.claim_quarantine").item()
    assert quarantined == 0  # the chunk committed nothing, nor its marking
    texts = [failed.stdout, failed.stderr, results.read_text(), *logged.cast(pl.String).to_list()]
    for npi in npis:
        assert all(npi not in text for text in texts), npi
