"""The database floor of a run (issue 32): what the database alone takes to do a run's three
unavoidable moves on the same data, each timed alone, one after the other:

- read: the pending claims and their lines (the columns a run reads) out of the source by binary COPY,
  every byte received;
- sink: the run's own warehouse rows written by the target's bulk path (`harness.sink_floor`);
- mark: one set-based UPDATE of the pending claims' status, run_id and processed_at, as a run sets
  them, rolled back.

floor = read + sink + mark; a run's seconds over it say what the engine adds to the database's work.
The rolled-back UPDATE leaves dead rows behind: measure the floor before restoring the template the
timed runs start from (`harness.restore_template`).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from benchmarks import harness

READS = (
    """COPY (
        SELECT claim_id, batch_id, patient_dob, billing_npi, rendering_npi, mac, locality, place_of_service,
               diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4, total_charge, received_date
        FROM staging.claims WHERE status = 'pending'
    ) TO STDOUT (FORMAT binary)""",
    """COPY (
        SELECT l.claim_id, l.line_number, l.service_date, l.procedure_code, l.modifier_1, l.modifier_2,
               l.modifier_3, l.modifier_4, l.units, l.charge, l.place_of_service
        FROM staging.claim_lines AS l JOIN staging.claims AS c ON c.claim_id = l.claim_id
        WHERE c.status = 'pending'
    ) TO STDOUT (FORMAT binary)""",
)
MARK = """UPDATE staging.claims SET status = 'processed', run_id = 'floor', processed_at = now()
WHERE status = 'pending'"""


def read_floor(url: str = harness.SOURCE_URL) -> tuple[float, int]:
    """Seconds to COPY the pending claims and lines out in binary, and the bytes received."""
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        received = 0
        started = time.perf_counter()
        for statement in READS:
            with cursor.copy(statement) as copy:
                for data in copy:
                    received += len(data)
        return time.perf_counter() - started, received


def mark_floor(url: str = harness.SOURCE_URL) -> tuple[float, int]:
    """Seconds of one UPDATE of every pending claim's status (rolled back), and the rows it changed."""
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(MARK)
        seconds = time.perf_counter() - started
        changed = cursor.rowcount
        connection.rollback()
    return seconds, changed


def measure(target: str) -> dict[str, Any]:
    """The floor's parts and their sum, seconds; each after the source settled (`harness.settle`)."""
    harness.settle()
    read, received = read_floor()
    harness.settle()
    sink = harness.sink_floor(target)
    harness.settle()
    mark, changed = mark_floor()
    return {
        "read": read,
        "sink": sink,
        "mark": mark,
        "total": read + sink + mark,
        "read_bytes": received,
        "marked": changed,
    }
