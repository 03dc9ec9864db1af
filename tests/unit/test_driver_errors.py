"""Driver errors as the engine's (claims_etl/errors.py, targets/postgres.py, stages/isolate.py): a
TargetError keeps the SQLSTATE its driver answered whatever handler re-raises it, so a lost connection
during isolation's trial writes fails the chunk instead of quarantining its claims; and a driver's text
loses the row values it echoes (PostgreSQL's DETAIL and COPY context, quoted values in PostgreSQL's and
MariaDB's messages, as the drivers word them), keeping the SQLSTATE, the primary message, the table
and column names."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from claims_etl.errors import TargetError, driver_message, without_values
from claims_etl.stages.isolate import PACKET_STATE, refusal_reason, refused_state, write_isolating
from claims_etl.stages.load import ChunkTables
from claims_etl.stages.write import no_checkpoint
from claims_etl.targets import PgTarget
from claims_etl.targets.postgres import target_error

SECRET = "Ann-Oakley-1951"  # stands for a row's value: a name, a date of birth, an id
# Error texts as psycopg, psqlODBC (through turbodbc) and MariaDB's driver (through turbodbc) word them.
_ODBC = "ODBC error\nstate: {}\nnative error code: {}\nmessage: "
_PSQLODBC_END = ";\nError while executing the query"
DRIVER_TEXTS = {
    "copy-too-long": "value too long for type character varying(10)\n"
    f'CONTEXT:  COPY priced_claims, line 3, column billing_npi: "{SECRET}"',
    "copy-out-of-range": f'value "{SECRET}" is out of range for type integer\n'
    f'CONTEXT:  COPY priced_claim_lines, line 1, column units: "{SECRET}"',
    "copy-not-null": 'null value in column "n" of relation "t" violates not-null constraint\n'
    f'DETAIL:  Failing row contains (1, {SECRET}, null).\nCONTEXT:  COPY t, line 1: "1,"{SECRET}","',
    "copy-duplicate": 'duplicate key value violates unique constraint "t_pkey"\n'
    f"DETAIL:  Key (k)=({SECRET}) already exists.\nCONTEXT:  COPY t, line 2",
    "copy-line": f'extra data after last expected column\nCONTEXT:  COPY t, line 1: "1,"abc",2,{SECRET}"',
    "copy-multiline-value": "value too long for type character varying(5)\n"
    f'CONTEXT:  COPY t, line 1, column v: "two\nlines "{SECRET}" here"',
    "copy-date-hint": f'date/time field value out of range: "{SECRET}"\n'
    'HINT:  Perhaps you need a different "datestyle" setting.\n'
    f'CONTEXT:  COPY t, line 1, column d: "{SECRET}"',
    "psqlodbc-out-of-range": _ODBC.format("22003", 1)
    + f'ERROR: value "{SECRET}" is out of range for type integer{_PSQLODBC_END}',
    "psqlodbc-syntax": _ODBC.format("22P02", 1)
    + f'ERROR: invalid input syntax for type integer: "{SECRET}"{_PSQLODBC_END}',
    "psqlodbc-not-null": _ODBC.format("23502", 1)
    + 'ERROR: null value in column "n" of relation "t5" violates not-null constraint\n'
    + f"DETAIL: Failing row contains (1, {SECRET}, null).{_PSQLODBC_END}",
    "mariadb-date": _ODBC.format("22007", 1292)
    + f"[ma-3.1.15][10.11.19-MariaDB]Incorrect date value: '{SECRET}' for column `db`.`t5`.`d` at row 1",
    "mariadb-duplicate": _ODBC.format("23000", 1062)
    + f"[ma-3.1.15][10.11.19-MariaDB]Duplicate entry 'O'{SECRET}' for key 'PRIMARY'",
    "mariadb-truncated": _ODBC.format("22007", 1292) + f"[ma-3.1.15]Truncated incorrect DOUBLE value: '{SECRET}'",
}
# What must stay of each: the SQLSTATE, the words of the primary message, the table and column names.
KEPT = {
    "copy-too-long": ["value too long for type character varying", "COPY priced_claims, line 3, column billing_npi"],
    "copy-out-of-range": ["is out of range for type integer", "COPY priced_claim_lines, line 1, column units"],
    "copy-not-null": ['null value in column "n" of relation "t" violates not-null constraint', "COPY t, line 1"],
    "copy-duplicate": ['violates unique constraint "t_pkey"', "COPY t, line 2"],
    "copy-line": ["extra data after last expected column", "COPY t, line 1"],
    "copy-multiline-value": ["COPY t, line 1, column v"],
    "copy-date-hint": ["date/time field value out of range", 'different "datestyle" setting', "column d"],
    "psqlodbc-out-of-range": ["state: 22003", "is out of range for type integer"],
    "psqlodbc-syntax": ["state: 22P02", "invalid input syntax for type integer"],
    "psqlodbc-not-null": ["state: 23502", 'null value in column "n" of relation "t5"'],
    "mariadb-date": ["state: 22007", "Incorrect date value", "for column `db`.`t5`.`d` at row 1"],
    "mariadb-duplicate": ["state: 23000", "Duplicate entry", "for key 'PRIMARY'"],
    "mariadb-truncated": ["state: 22007", "Truncated incorrect DOUBLE value"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DRIVER_TEXTS))
def test_a_drivers_text_keeps_its_words_and_names_and_loses_the_rows_values(name: str) -> None:
    shown = driver_message(DRIVER_TEXTS[name], "postgresql://etl:pw@db/claims")
    assert SECRET not in shown and "Ann" not in shown and "DETAIL" not in shown, shown
    for words in KEPT[name]:
        assert words in shown, (words, shown)
    assert without_values(shown) == shown  # scrubbed twice (as the run record and stderr do): the same


def test_texts_without_values_pass_unchanged() -> None:
    for text in (
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" does not exist',
        "ODBC error\nstate: 22001\nnative error code: 1406\nmessage: [ma-3.1.15]Data too long for column 'v' at row 1",
        "ODBC error\nstate: 42S02\nnative error code: 1146\nmessage: [ma-3.1.15]Table 'db.etl_runs' doesn't exist",
        "Got a packet bigger than 'max_allowed_packet' bytes",
    ):
        assert without_values(text) == text


def test_psycopgs_copy_error_becomes_a_target_error_with_its_sqlstate_and_no_value() -> None:
    error = psycopg.errors.NumericValueOutOfRange(DRIVER_TEXTS["copy-out-of-range"])
    made = target_error("load", error, "", "warehouse insert failed")
    assert (made.sqlstate, made.refused_value, made.transient) == ("22003", True, False)
    assert SECRET not in str(made) and "(SQLSTATE 22003)" in str(made)
    assert refusal_reason(made) == "refused by the warehouse: a value it cannot store (SQLSTATE 22003, column units)"
    rebuilt = pickle.loads(pickle.dumps(made))  # a writer process's error reaches the run with its SQLSTATE
    assert (rebuilt.sqlstate, rebuilt.message) == (made.sqlstate, made.message)


@dataclass
class _LosingTarget(PgTarget):
    """A PgTarget whose COPY fails as scripted: the chunk's on a value, every later one on a lost connection."""

    failures: list[psycopg.Error] = field(default_factory=list)

    def insert_rows(self, table: str, rows: pa.Table) -> None:
        raise self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]

    def rollback_quietly(self) -> None:
        return

    def commit(self) -> None:
        return


def test_a_connection_lost_during_isolations_trial_writes_fails_the_chunk_and_quarantines_nothing() -> None:
    too_long = psycopg.errors.StringDataRightTruncation(DRIVER_TEXTS["copy-too-long"])
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    target = _LosingTarget(connection=None, dialect="postgresql", secret="", failures=[too_long, lost])
    claims = pa.table({"claim_id": pa.array([1, 2], pa.int64())})
    chunk = ChunkTables(tables={"priced_claims": claims}, recovered=claims.slice(0, 0), claims=2)
    outcome: Any = None
    try:
        target.insert_rows("priced_claims", claims)
    except psycopg.Error as driver_error:
        failure = target_error("load", driver_error, "", "warehouse insert failed")
    try:  # isolation runs inside write_chunk's handler of the chunk's failure, as here
        raise failure
    except TargetError as handled:
        with pytest.raises(TargetError, match="server closed the connection") as raised:
            outcome = write_isolating(target, chunk, no_checkpoint, handled)
    assert outcome is None  # before: both claims quarantined with the chunk's 22001
    assert (raised.value.sqlstate, raised.value.refused_value, raised.value.transient) == (None, False, True)


def test_a_packet_refusal_is_a_flag_that_crosses_processes() -> None:
    """Isolation (stages/isolate.py) reads the flag the ODBC session set when it mapped the driver's
    error, never the message; a writer process's error reaches the run by pickle with it."""
    error = TargetError("load", "insert failed: server closed", transient=False, sqlstate="08S01", packet_refused=True)
    again = pickle.loads(pickle.dumps(error))
    assert (again.sqlstate, again.packet_refused, refused_state(again)) == ("08S01", True, PACKET_STATE)
    assert refused_state(TargetError("load", "insert failed: max_allowed_packet", sqlstate="08S01")) is None
