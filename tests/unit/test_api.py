"""The public API's two summaries (claims_etl.__init__: rejections_by_rule, allowed_vs_charge) on small
literal frames; the stages against the real source are in tests/integration/api/test_public_api.py."""

from __future__ import annotations

import polars as pl

import claims_etl as ce
from claims_etl.schemas import PRICED_LINES, REJECTED, conform


def _rejected(*rule_ids: str) -> pl.DataFrame:
    rows = [{"claim_id": n, "batch_id": "b1", "recovered": False, "rule_ids": ids} for n, ids in enumerate(rule_ids, 1)]
    return conform(pl.DataFrame(rows, schema=REJECTED), REJECTED, name="rejected")


def _priced_lines(*rows: tuple[int, str, int, int, int]) -> pl.DataFrame:
    """(claim_id, procedure_code, facility, charge_cents, allowed_cents) per line."""
    return conform(
        pl.DataFrame(
            [
                {
                    "claim_id": claim_id,
                    "line_number": 1,
                    "procedure_code": code,
                    "modifier_1": None,
                    "units": 1,
                    "charge_cents": charge,
                    "facility": facility,
                    "fee_schedule_cents": allowed,
                    "adjustment_factor_e5": 100_000,
                    "allowed_cents": allowed,
                    "pricing_note": "",
                }
                for claim_id, code, facility, charge, allowed in rows
            ],
            schema=PRICED_LINES,
        ),
        PRICED_LINES,
        name="priced_lines",
    )


def test_rejections_by_rule_counts_each_claim_once_per_rule() -> None:
    rejected = _rejected("V05", "V01,V05,V13", "V13", "V05", "V02")
    summary = ce.rejections_by_rule(rejected)
    assert dict(summary.schema) == {"rule_id": pl.String(), "claims": pl.UInt32()}
    assert summary.rows() == [("V05", 3), ("V13", 2), ("V01", 1), ("V02", 1)]


def test_rejections_by_rule_of_no_rejections_is_empty() -> None:
    summary = ce.rejections_by_rule(pl.DataFrame(schema=REJECTED))
    assert summary.columns == ["rule_id", "claims"]
    assert summary.is_empty()


LITERAL_LINES = [
    (1, "A0001", 0, 10_000, 4_000),
    (2, "A0001", 0, 5_000, 2_500),
    (3, "B0002", 1, 2_000, 0),  # non-payable status: allowed 0
    (4, "A0001", 1, 8_000, 2_000),
]


def test_allowed_vs_charge_by_procedure_code_is_the_default() -> None:
    summary = ce.allowed_vs_charge(_priced_lines(*LITERAL_LINES))
    assert dict(summary.schema) == {
        "procedure_code": pl.String(),
        "lines": pl.UInt32(),
        "charge": pl.Float64(),
        "allowed": pl.Float64(),
        "allowed_share": pl.Float64(),
    }
    assert summary.rows() == [("A0001", 3, 230.0, 85.0, 85.0 / 230.0), ("B0002", 1, 20.0, 0.0, 0.0)]


def test_allowed_vs_charge_by_facility_and_code() -> None:
    lines = _priced_lines(*LITERAL_LINES)
    assert ce.allowed_vs_charge(lines, by=["facility"]).rows() == [
        (0, 2, 150.0, 65.0, 65.0 / 150.0),
        (1, 2, 100.0, 20.0, 0.2),
    ]
    assert ce.allowed_vs_charge(lines, by=["facility", "procedure_code"]).rows() == [
        (0, "A0001", 2, 150.0, 65.0, 65.0 / 150.0),
        (1, "A0001", 1, 80.0, 20.0, 0.25),
        (1, "B0002", 1, 20.0, 0.0, 0.0),
    ]
