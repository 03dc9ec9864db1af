"""The public stage API (claims_etl.__init__): read_pending against the real source, load_reference,
validate and price on the frames they return (the summaries on literal frames: tests/unit/test_api.py)."""

from __future__ import annotations

from typing import Any

import polars as pl
import psycopg
import pytest

import claims_etl as ce
from claims_etl.schemas import CLAIMS, GPCI, LINES, PRICED_CLAIMS, PRICED_LINES, REJECTED, RVU
from claims_etl.synthetic import INVALID_RULES
from tests.db import RUN_DATE, SOURCE_URL
from tests.seeding import seeded_fixture

SEEDED = 300
BATCH = "seed5-0000"
OTHER_BATCH = "seed5-0001"


# 300 pending claims (claim ids 1-300, batch seed5-0000), a fifth of them invalid, and their reference years.
seeded = seeded_fixture(SEEDED, seed=5, invalid_rate=0.2, on="pg_settings")


def _query(statement: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(SOURCE_URL) as connection:
        return connection.execute(statement, parameters).fetchall()


def _execute(statement: str, parameters: list[Any] | None = None) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute(statement, parameters)


def _claims_with_lines(where: str) -> set[int]:
    """Claims having lines in the source (V15's seeded claims have none)."""
    return {row[0] for row in _query(f"SELECT DISTINCT claim_id FROM staging.claim_lines WHERE {where}")}


def _claim_ids(frame: pl.DataFrame) -> list[int]:
    return frame.get_column("claim_id").to_list()


# ---------------------------------------------------------------- read_pending


def test_read_pending_returns_pending_claims_and_lines_in_the_stage_schemas(seeded: ce.Settings) -> None:
    pending = ce.read_pending(seeded)
    assert isinstance(pending, ce.Extracted)
    assert dict(pending.claims.schema) == CLAIMS
    assert dict(pending.lines.schema) == LINES
    assert "patient_id" not in pending.claims.columns
    assert _claim_ids(pending.claims) == list(range(1, SEEDED + 1))
    assert pending.claims.get_column("batch_id").unique().to_list() == [BATCH]
    assert not pending.claims.get_column("recovered").any()
    source_claims = _query(
        "SELECT claim_id, billing_npi, mac, locality, (total_charge * 100)::bigint FROM staging.claims ORDER BY 1"
    )
    assert pending.claims.select("claim_id", "billing_npi", "mac", "locality", "total_charge_cents").rows() == (
        source_claims
    )
    source_lines = _query(
        "SELECT claim_id, line_number::int, procedure_code, units::bigint, (charge * 100)::bigint "
        "FROM staging.claim_lines ORDER BY 1, 2"
    )
    assert pending.lines.select("claim_id", "line_number", "procedure_code", "units", "charge_cents").rows() == (
        source_lines
    )


def test_read_pending_limit_takes_the_lowest_claim_ids_with_all_their_lines(seeded: ce.Settings) -> None:
    pending = ce.read_pending(seeded, limit=25)
    assert _claim_ids(pending.claims) == list(range(1, 26))
    expected_lines = _query(
        "SELECT claim_id, line_number::int FROM staging.claim_lines WHERE claim_id <= 25 ORDER BY 1, 2"
    )
    assert pending.lines.select("claim_id", "line_number").rows() == expected_lines


def test_read_pending_filters_by_batch_id(seeded: ce.Settings) -> None:
    _execute("UPDATE staging.claims SET batch_id = %s WHERE claim_id > 250", [OTHER_BATCH])
    other = ce.read_pending(seeded, batch_id=OTHER_BATCH)
    assert _claim_ids(other.claims) == list(range(251, 301))
    assert other.claims.get_column("batch_id").unique().to_list() == [OTHER_BATCH]
    assert set(_claim_ids(other.lines)) == _claims_with_lines("claim_id > 250")
    assert _claim_ids(ce.read_pending(seeded, batch_id=OTHER_BATCH, limit=10).claims) == list(range(251, 261))
    assert ce.read_pending(seeded, batch_id=BATCH).claims.height == 250
    unknown = ce.read_pending(seeded, batch_id="no-such-batch")
    assert (unknown.claims.height, unknown.lines.height) == (0, 0)
    assert (dict(unknown.claims.schema), dict(unknown.lines.schema)) == (CLAIMS, LINES)


def test_read_pending_skips_claims_no_longer_pending(seeded: ce.Settings) -> None:
    _execute("UPDATE staging.claims SET status = 'processed' WHERE claim_id <= 100")
    _execute("UPDATE staging.claims SET status = 'rejected' WHERE claim_id > 290")
    pending = ce.read_pending(seeded)
    assert _claim_ids(pending.claims) == list(range(101, 291))
    assert set(_claim_ids(pending.lines)) == _claims_with_lines("claim_id BETWEEN 101 AND 290")
    assert _claim_ids(ce.read_pending(seeded, limit=5).claims) == list(range(101, 106))


def test_read_pending_leases_nothing_and_changes_no_status(seeded: ce.Settings) -> None:
    snapshot = "SELECT claim_id, status, run_id, processed_at FROM staging.claims ORDER BY claim_id"
    before = _query(snapshot)
    ce.read_pending(seeded)
    ce.read_pending(seeded, limit=10)
    ce.read_pending(seeded, batch_id=BATCH, limit=50)
    assert _query(snapshot) == before
    assert _query("SELECT count(*) FROM staging.range_leases") == [(0,)]
    assert _query("SELECT status, count(*) FROM staging.claims GROUP BY status") == [("pending", SEEDED)]


# ---------------------------------------------------------------- load_reference


def test_load_reference_returns_every_loaded_year_exactly_scaled(seeded: ce.Settings) -> None:
    reference = ce.load_reference(seeded)
    assert isinstance(reference, ce.ReferenceFrames)
    assert dict(reference.rvu.schema) == RVU
    assert dict(reference.gpci.schema) == GPCI
    rvu_columns = ["year", "hcpcs", "modifier", "work_rvu_e4", "nonfac_pe_rvu_e4", "facility_pe_rvu_e4", "mp_rvu_e4"]
    assert sorted(reference.rvu.select(rvu_columns).rows()) == sorted(
        _query(
            "SELECT year::int, hcpcs, modifier, (work_rvu * 10000)::bigint, (nonfac_pe_rvu * 10000)::bigint, "
            "(facility_pe_rvu * 10000)::bigint, (mp_rvu * 10000)::bigint FROM staging.rvu"
        )
    )
    conversion = reference.rvu.group_by("year").agg(pl.col("conv_factor_e4").unique()).sort("year").rows()
    assert conversion == [(2025, [323_465]), (2026, [334_009])]
    assert sorted(reference.gpci.select("year", "mac", "locality", "pw_gpci_e4").rows()) == sorted(
        _query("SELECT year::int, mac, locality, (pw_gpci * 10000)::bigint FROM staging.gpci")
    )
    assert reference.gpci.height == 24  # 12 localities x 2 years


# ---------------------------------------------------------------- validate and price on read frames


def test_validate_and_price_split_and_price_every_claim_read(seeded: ce.Settings) -> None:
    pending = ce.read_pending(seeded)
    reference = ce.load_reference(seeded)
    checked = ce.validate(pending.claims, pending.lines, reference, run_date=RUN_DATE)
    assert isinstance(checked, ce.Validated)
    assert dict(checked.accepted_claims.schema) == CLAIMS
    assert dict(checked.accepted_lines.schema) == LINES
    assert dict(checked.rejected.schema) == REJECTED
    accepted, rejected = set(_claim_ids(checked.accepted_claims)), set(_claim_ids(checked.rejected))
    assert len(accepted) + len(rejected) == pending.claims.height == SEEDED
    assert accepted | rejected == set(range(1, SEEDED + 1))
    assert set(_claim_ids(checked.accepted_lines)) == accepted
    assert checked.accepted_lines.height == pending.lines.filter(pl.col("claim_id").is_in(sorted(accepted))).height

    broken = ce.rejections_by_rule(checked.rejected)
    assert set(broken.get_column("rule_id")) == set(INVALID_RULES)  # the seed breaks every rule
    assert broken.get_column("claims").sum() >= checked.rejected.height

    priced = ce.price(checked.accepted_claims, checked.accepted_lines, reference)
    assert isinstance(priced, ce.Priced)
    assert dict(priced.lines.schema) == PRICED_LINES
    assert dict(priced.claims.schema) == PRICED_CLAIMS
    assert _claim_ids(priced.claims) == sorted(accepted)
    assert priced.lines.height == checked.accepted_lines.height
    lines = priced.lines
    assert lines.filter((pl.col("allowed_cents") < 0) | (pl.col("allowed_cents") > pl.col("charge_cents"))).is_empty()
    totals = lines.group_by("claim_id").agg(pl.col("allowed_cents").sum()).sort("claim_id")
    assert totals.rows() == priced.claims.select("claim_id", "total_allowed_cents").rows()

    summary = ce.allowed_vs_charge(lines, by=["facility"])
    assert summary.get_column("lines").sum() == lines.height
    assert summary.get_column("charge").sum() == pytest.approx(lines.get_column("charge_cents").sum() / 100)
    assert summary.get_column("allowed").sum() == pytest.approx(lines.get_column("allowed_cents").sum() / 100)
