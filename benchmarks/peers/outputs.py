"""What a run leaves behind, read back to check two runs of the same data equal (the engine's and a
peer's, benchmarks/bench.py): every warehouse row and every source claim's status. Left out only what
differs between runs by nature: run ids and timestamps (each is checked present: NOT NULL columns in
the warehouse, and a marked claim's run_id and processed_at below)."""

from __future__ import annotations

import connectorx as cx
import polars as pl

# Each table's rows without run_id and time stamps; numbers as the database's own text (exact).
QUERIES = {
    "priced_claims": """
        SELECT claim_id, batch_id, billing_npi, mac, locality, place_of_service, line_count,
               total_charge::text AS total_charge, total_allowed::text AS total_allowed
        FROM warehouse.priced_claims ORDER BY claim_id""",
    "priced_claim_lines": """
        SELECT claim_id, line_number::integer AS line_number, procedure_code, modifier_1, units, charge::text AS charge,
               facility::integer AS facility, fee_schedule_amount::text AS fee_schedule_amount,
               adjustment_factor::text AS adjustment_factor, allowed_amount::text AS allowed_amount, pricing_note,
               rvu_release, cf_kind
        FROM warehouse.priced_claim_lines ORDER BY claim_id, line_number""",
    "rejected_claims": "SELECT claim_id, batch_id, rule_ids FROM warehouse.rejected_claims ORDER BY claim_id",
    "claim_warnings": "SELECT claim_id, rule_id FROM warehouse.claim_warnings ORDER BY claim_id, rule_id",
    "statuses": """
        SELECT claim_id, status, run_id IS NOT NULL AS has_run_id, processed_at IS NOT NULL AS has_processed_at
        FROM staging.claims ORDER BY claim_id""",
    "quarantine": "SELECT claim_id, reason FROM staging.claim_quarantine ORDER BY claim_id",
}
SHOWN = 5  # differing rows shown per table


def snapshot(url: str) -> dict[str, pl.DataFrame]:
    """The warehouse's rows and the source's statuses (one PostgreSQL database holding both)."""
    frames = {}
    for name, query in QUERIES.items():
        frame = pl.from_arrow(cx.read_sql(url, query, return_type="arrow"))
        assert isinstance(frame, pl.DataFrame)
        frames[name] = frame
    return frames


def differences(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> list[str]:
    """How two snapshots differ, table by table (empty when equal): row counts and a few rows that
    are in one and not in the other."""
    found = []
    for name in QUERIES:
        a, b = ours[name], theirs[name]
        if a.equals(b):
            continue
        only_a, only_b = (
            a.join(b, on=a.columns, how="anti", nulls_equal=True),
            b.join(a, on=b.columns, how="anti", nulls_equal=True),
        )
        found.append(
            f"{name}: {a.height:,} rows vs {b.height:,}; only in the first {only_a.height:,}, e.g. "
            f"{only_a.head(SHOWN).rows()}; only in the second {only_b.height:,}, e.g. {only_b.head(SHOWN).rows()}"
        )
    return found
