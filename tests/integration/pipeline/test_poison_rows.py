"""Poison rows (issue 19 item 1): values no reader or warehouse can hold. A service date of infinity or
year 300000, a 70 KB batch_id, NaN or Infinity money (in a producer's unconstrained numeric columns)
are rejected with V16; a value V16 does not know that the source cannot deliver (NaN units) or that the
warehouse refuses (a 70 KB NPI with V01 switched off) is quarantined with a reason. The run goes on
and exits 0, the good claims around them priced exactly as without them, `reconcile` finds nothing,
and a rerun changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest

import claims_etl
from claims_etl.db.source import init_source
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.settings.rules_file import parse_rules
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from claims_etl.synthetic import seed
from tests.db import ALL_TARGET_NAMES, RUN_DATE, SOURCE_URL, cli_env, read_source, run_cli
from tests.helpers import Reader, reconcile

GOOD = 40  # seeded claims before and after the poison ones: the poison sits inside one range and chunk
RULES = "[V01]\nenabled = false\n"  # lets a 70 KB NPI reach the warehouse, which must refuse it
V16 = "V16"
UNREADABLE = "unreadable in the source"
REFUSED = "refused by the warehouse"
# Each poison: the statement that plants it in a copy of a good claim (%s its claim_id), and what the
# claim must end as: rejected with V16 among its rule ids, or quarantined with a reason starting so.
POISONS = {
    "infinity-service-date": ("UPDATE staging.claim_lines SET service_date = 'infinity' WHERE claim_id = %s", V16),
    "year-300000": ("UPDATE staging.claim_lines SET service_date = '300000-06-01' WHERE claim_id = %s", V16),
    "minus-infinity-birth": ("UPDATE staging.claims SET patient_dob = '-infinity' WHERE claim_id = %s", V16),
    "received-year-300000": ("UPDATE staging.claims SET received_date = '300000-01-01' WHERE claim_id = %s", V16),
    "batch-id-70kb": ("UPDATE staging.claims SET batch_id = repeat('b', 70000) WHERE claim_id = %s", V16),
    "nan-charge": ("UPDATE staging.claim_lines SET charge = 'NaN' WHERE claim_id = %s", V16),
    "infinity-total": ("UPDATE staging.claims SET total_charge = 'Infinity' WHERE claim_id = %s", V16),
    "oversized-total": ("UPDATE staging.claims SET total_charge = 1e30 WHERE claim_id = %s", V16),
    "nan-units": ("UPDATE staging.claim_lines SET units = 'NaN' WHERE claim_id = %s", UNREADABLE),
    "npi-70kb": ("UPDATE staging.claims SET billing_npi = repeat('1', 70000) WHERE claim_id = %s", REFUSED),
}
# Two claims of one chunk the warehouse refuses for different reasons (2^40 units, which a rules file
# lets through V07, overflow an integer column): each reason names its own SQLSTATE and column (where
# the driver names one), never the value.
UNITS_2_40 = "UPDATE staging.claim_lines SET units = 1099511627776 WHERE claim_id = %s"
OWN_STATES = {"npi-70kb": ("22001", "billing_npi", "1" * 64), "units-2^40": ("22003", "units", "1099511627776")}
PLANTED = {name: statement for name, (statement, _) in POISONS.items()} | {"units-2^40": UNITS_2_40}
# A producer's database may declare money and units as plain numeric (docs/spec.md §1 says numeric(12,2)
# and integer; the engine works against an existing database): there NaN and Infinity fit.
LOOSE_TYPES = (
    "ALTER TABLE staging.claims ALTER COLUMN total_charge TYPE numeric",
    "ALTER TABLE staging.claim_lines ALTER COLUMN charge TYPE numeric",
    "ALTER TABLE staging.claim_lines ALTER COLUMN units TYPE numeric",
)
CONTRACT_TYPES = (
    "ALTER TABLE staging.claims ALTER COLUMN total_charge TYPE numeric(12, 2)",
    "ALTER TABLE staging.claim_lines ALTER COLUMN charge TYPE numeric(12, 2)",
    "ALTER TABLE staging.claim_lines ALTER COLUMN units TYPE integer",
)


def _retype(settings: Settings, statements: tuple[str, ...]) -> None:
    """Column types changed under the engine's views: dropped, altered, created again by db init."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute("DROP VIEW IF EXISTS staging.etl_rows, staging.etl_claims, staging.etl_claim_lines")
        for statement in statements:
            connection.execute(statement)  # type: ignore[arg-type]
    init_source(settings)


@pytest.fixture
def loose(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Fresh databases with plain numeric money and units, and the rules file: V01 off."""
    _retype(settings, LOOSE_TYPES)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    try:
        yield settings.model_copy(update={"rules_file": rules, "load_chunk_claims": 16})
    finally:
        with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
            connection.execute("TRUNCATE staging.range_leases, staging.claim_lines, staging.claims")
        _retype(settings, CONTRACT_TYPES)


def _plant(settings: Settings, tmp_path: Path, poisons: list[str]) -> list[int]:
    """GOOD seeded claims, then a copy of the first good claim per poison, poisoned, then GOOD more:
    the poison claims sit between good ones. Returns the poison claims' ids, in `poisons` order."""
    seed(settings, GOOD, seed=11, invalid_rate=0.1, directory=tmp_path)
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        first = connection.execute("SELECT min(claim_id) FROM staging.claims").fetchone()[0]  # type: ignore[index]
        last = connection.execute("SELECT max(claim_id) FROM staging.claims").fetchone()[0]  # type: ignore[index]
        ids = [last + number for number in range(1, len(poisons) + 1)]
        for claim_id, poison in zip(ids, poisons, strict=True):
            connection.execute(
                "INSERT INTO staging.claims SELECT %s, batch_id, patient_id, patient_dob, billing_npi, rendering_npi,"
                " mac, locality, place_of_service, diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4, total_charge,"
                " received_date, status, run_id, processed_at FROM staging.claims WHERE claim_id = %s",
                [claim_id, first],
            )
            connection.execute(
                "INSERT INTO staging.claim_lines SELECT %s, line_number, service_date, procedure_code, modifier_1,"
                " modifier_2, modifier_3, modifier_4, units, charge, place_of_service FROM staging.claim_lines"
                " WHERE claim_id = %s",
                [claim_id, first],
            )
            connection.execute(PLANTED[poison], [claim_id])  # type: ignore[arg-type]
    seed(settings, GOOD, seed=11, invalid_rate=0.1, directory=tmp_path)
    return ids


def _expected(settings: Settings, poison_ids: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The good claims' priced lines and rejections, computed by the pure stages from the good claims
    alone: what the warehouse would hold without the poison."""
    good = f"claim_id NOT IN ({', '.join(map(str, poison_ids))})"  # some cannot even be read
    claims = read_source(f"SELECT *, false AS recovered FROM staging.etl_claims WHERE {good}")
    lines = read_source(f"SELECT * FROM staging.etl_claim_lines WHERE {good}")
    frames = read_frames(settings)
    validated = validate(claims, lines, frames, run_date=RUN_DATE, rules=parse_rules(RULES).config)
    priced = price(validated.accepted_claims, validated.accepted_lines, frames)
    lines_out = priced.lines.select("claim_id", "line_number", "allowed_cents", "fee_schedule_cents")
    return lines_out.sort("claim_id", "line_number"), validated.rejected.select("claim_id", "rule_ids").sort("claim_id")


def _warehouse(read_target: Reader) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    lines = read_target(
        "SELECT claim_id, line_number, allowed_amount, fee_schedule_amount FROM warehouse.priced_claim_lines"
    ).select(
        pl.col("claim_id").cast(pl.Int64),
        pl.col("line_number").cast(pl.Int32),
        (pl.col("allowed_amount").cast(pl.Float64) * 100).round().cast(pl.Int64).alias("allowed_cents"),
        (pl.col("fee_schedule_amount").cast(pl.Float64) * 100).round().cast(pl.Int64).alias("fee_schedule_cents"),
    )
    rejected = read_target("SELECT claim_id, rule_ids, batch_id FROM warehouse.rejected_claims")
    priced = read_target("SELECT claim_id FROM warehouse.priced_claims")
    return lines.sort("claim_id", "line_number"), rejected.sort("claim_id"), priced.sort("claim_id")


def _assert_outcome(
    read_target: Reader, poisons: list[str], poison_ids: list[int], expected: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    lines, rejected, priced = _warehouse(read_target)
    good = ~pl.col("claim_id").is_in(poison_ids)
    want_lines, want_rejected = expected
    assert lines.filter(good).rows() == want_lines.rows()  # good claims priced exactly as without the poison
    assert rejected.filter(good).select("claim_id", "rule_ids").rows() == want_rejected.rows()
    statuses = dict(read_source("SELECT claim_id, status FROM staging.claims").iter_rows())
    reasons = dict(read_source("SELECT claim_id, reason FROM staging.claim_quarantine").iter_rows())
    rule_ids = dict(rejected.select("claim_id", "rule_ids").iter_rows())
    for claim_id, poison in zip(poison_ids, poisons, strict=True):
        outcome = POISONS[poison][1]
        assert claim_id not in priced.get_column("claim_id").to_list(), poison
        if outcome == V16:
            assert V16 in rule_ids[claim_id].split(","), (poison, rule_ids.get(claim_id))
            assert statuses[claim_id] == "rejected"
        else:
            assert statuses[claim_id] == "quarantined", poison
            assert reasons[claim_id].startswith(outcome), reasons[claim_id]
            assert claim_id not in rule_ids
    if "batch-id-70kb" in poisons:  # the rejected row keeps the first 16,383 characters: writable everywhere
        kept = rejected.filter(pl.col("claim_id") == poison_ids[poisons.index("batch-id-70kb")]).item(0, "batch_id")
        assert kept == "b" * 16_383
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poison_claim_alone_is_rejected_or_quarantined_and_the_run_goes_on(
    loose: Settings, read_target: Reader, tmp_path: Path, poison: str
) -> None:
    poison_ids = _plant(loose, tmp_path, [poison])
    expected = _expected(loose, poison_ids)
    result = claims_etl.run(loose)
    assert result.claims_read == 2 * GOOD + 1
    assert result.claims_quarantined == (POISONS[poison][1] != V16)
    _assert_outcome(read_target, [poison], poison_ids, expected)


def test_poison_claims_mixed_with_good_ones_exit_0_reconcile_and_a_rerun_changes_nothing(
    loose: Settings, read_target: Reader, tmp_path: Path
) -> None:
    poisons = sorted(POISONS)
    poison_ids = _plant(loose, tmp_path, poisons)
    expected = _expected(loose, poison_ids)
    env = cli_env(loose, CLAIMS_ETL_RULES_FILE=str(loose.rules_file), CLAIMS_ETL_LOAD_CHUNK_CLAIMS="16")
    first = run_cli(env)
    assert first.returncode == 0, first.stderr
    _assert_outcome(read_target, poisons, poison_ids, expected)
    code, report = reconcile(loose)
    assert (code, report["consistent"]) == (0, True), report["differences"]
    before = (_warehouse(read_target), read_source("SELECT claim_id, status FROM staging.claims ORDER BY 1"))
    again = run_cli(env)
    assert again.returncode == 0, again.stderr
    after = (_warehouse(read_target), read_source("SELECT claim_id, status FROM staging.claims ORDER BY 1"))
    assert [frame.rows() for frame in (*before[0], before[1])] == [frame.rows() for frame in (*after[0], after[1])]


@pytest.mark.parametrize("target_name", ALL_TARGET_NAMES, indirect=True)
def test_claims_refused_in_one_chunk_each_get_their_own_sqlstate_and_no_value(
    loose: Settings, target_name: str, tmp_path: Path
) -> None:
    poisons = list(OWN_STATES)
    poison_ids = _plant(loose, tmp_path, poisons)
    assert loose.rules_file is not None
    loose.rules_file.write_text(RULES + "[V07]\nmax = 1099511627776\n")
    result = claims_etl.run(loose)
    assert result.claims_quarantined == len(poisons)
    reasons = dict(read_source("SELECT claim_id, reason FROM staging.claim_quarantine").iter_rows())
    for claim_id, poison in zip(poison_ids, poisons, strict=True):
        state, column, value = OWN_STATES[poison]
        assert f"SQLSTATE {state}" in reasons[claim_id], (poison, reasons[claim_id])
        if target_name != "postgresql":  # psqlODBC's message names no column
            assert f"column {column}" in reasons[claim_id], (poison, reasons[claim_id])
        assert value not in reasons[claim_id]
