"""A payer's rules file on the real databases (docs/spec.md §5.1): a run with it loads exactly what the
pure stages say under the same file, warn rules' hits in claim_warnings with the priced claims, its
configuration recorded with the run; a malformed file stops the run before it leases anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import psycopg
import pytest

import claims_etl
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.settings.rules_file import load_rules
from claims_etl.stages.price import price
from claims_etl.stages.validate import validate
from tests.db import RUN_DATE, SOURCE_URL, cli_env, read_source
from tests.helpers import Reader, reconcile
from tests.integration.pipeline.test_pipeline import CLAIMS, seeded  # noqa: F401  (fixture)
from tests.unit.cli.test_app import assert_one_clear_line, cli

RULES = """
[V10]
days = 180

[V13]
severity = "warn"

[V12]
enabled = false

[[custom]]
id = "BIG_UNITS"
level = "line"
description = "4 units or more on a line"
expression = "units >= 4"

[[custom]]
id = "TWO_DX"
level = "claim"
description = "a second diagnosis given"
expression = "diagnosis_2 IS NOT NULL"
severity = "warn"
"""


def _expected(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    claims = read_source("SELECT *, false AS recovered FROM staging.etl_claims")
    lines = read_source("SELECT * FROM staging.etl_claim_lines")
    checked = validate(claims, lines, read_frames(settings), run_date=RUN_DATE, rules=settings.rules().config)
    return checked.accepted_claims.select("claim_id"), checked.rejected, checked.warnings


def test_a_run_with_a_rules_file_loads_what_the_file_says(
    seeded: Settings,  # noqa: F811
    read_target: Reader,
    tmp_path: Path,
) -> None:
    path = tmp_path / "payer.toml"
    path.write_text(RULES)
    settings = seeded.model_copy(update={"rules_file": path, "range_claims": 400})
    accepted, rejected, warnings = _expected(settings)
    default_rejected = _expected(seeded)[1]
    assert rejected.height != default_rejected.height  # the file changes the outcome
    assert set(warnings.get_column("rule_id")) == {"TWO_DX", "V13"}
    assert "BIG_UNITS" in ",".join(rejected.get_column("rule_ids"))

    result = claims_etl.run(settings)

    assert (result.claims_priced, result.claims_rejected) == (accepted.height, rejected.height)
    got_rejected = read_target("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").sort("claim_id")
    assert got_rejected.rows() == rejected.select("claim_id", "rule_ids").sort("claim_id").rows()
    priced = read_target("SELECT claim_id FROM warehouse.priced_claims").sort("claim_id")
    assert priced.get_column("claim_id").to_list() == accepted.get_column("claim_id").sort().to_list()
    got_warnings = read_target("SELECT claim_id, rule_id, run_id FROM warehouse.claim_warnings")
    assert got_warnings.select("claim_id", "rule_id").sort("claim_id", "rule_id").rows() == warnings.rows()
    assert set(got_warnings.get_column("run_id")) == {result.run_id}
    assert not set(got_warnings.get_column("claim_id")) & set(rejected.get_column("claim_id"))  # priced only
    by_rule = warnings.get_column("rule_id").value_counts().sort("rule_id")
    assert result.metrics.warnings_by_rule == dict(by_rule.iter_rows())
    options = json.loads(read_target("SELECT options FROM warehouse.etl_runs").item())
    assert options["rules_sha256"] == hashlib.sha256(RULES.encode()).hexdigest()
    assert options["rules"] == RULES
    assert load_rules(path).sha256 == options["rules_sha256"]


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[V10]\ndays = '90'", "V10.days: Input should be a valid integer"),
        ("[V42]\nenabled = false", "V42: Extra inputs are not permitted"),
        ("[V07]\nmaximum = 10", "V07.maximum: Extra inputs are not permitted"),
        ("[V14]\nseverity = 'warn'", "V14.severity"),
        ("[[custom]]\nid='C1'\nlevel='line'\ndescription='x'\nexpression='unitz > 1'", 'column "unitz"'),
        ("[[custom]]\nid='V01'\nlevel='line'\ndescription='x'\nexpression='units > 1'", "reserved"),
        ("V10 = ", "not TOML"),
    ],
)
@pytest.mark.parametrize("given_by", ["flag", "env"])
def test_a_malformed_rules_file_exits_2_with_nothing_leased(
    seeded: Settings,  # noqa: F811
    read_target: Reader,
    tmp_path: Path,
    text: str,
    fragment: str,
    given_by: str,
) -> None:
    path = tmp_path / "payer.toml"
    path.write_text(text)
    env = cli_env(seeded)
    args = ["run", "--rules", str(path)] if given_by == "flag" else ["run"]
    if given_by == "env":
        env["CLAIMS_ETL_RULES_FILE"] = str(path)
    result = cli(*args, env=env)
    assert_one_clear_line(result, 2, fragment)
    assert read_source("SELECT count(*) AS n FROM staging.range_leases").item() == 0
    statuses = read_source("SELECT status, count(*) AS n FROM staging.claims GROUP BY status")
    assert statuses.rows() == [("pending", CLAIMS)]
    assert read_target("SELECT count(*) AS n FROM warehouse.etl_runs").item() == 0


def _units_that_would_wrap_below(fee_cents: int, charge_cents: int) -> int:
    """A unit count within the source's integer whose fee x units x 10^5, wrapped to int64 as it was, lands
    below the charge (a negative or small allowed amount): the exact amount is far above the charge."""
    top, step, limit = 2**31 - 1, fee_cents * 100_000, charge_cents * 100_000
    wrapped = (step * top + 2**63) % 2**64 - 2**63
    # Going down from `top`, the wrapped product falls by `step` a unit until it passes below `limit`
    # (it cannot wrap again first: `limit` is far above -2^63); the first count below it, worked directly.
    units = top if wrapped < limit else top - ((wrapped - limit) // step + 1)
    assert units > 2**30, "no unit count wraps below the charge"
    return units


def test_a_huge_unit_count_a_rules_file_allows_is_priced_exactly(
    seeded: Settings,  # noqa: F811
    read_target: Reader,
    tmp_path: Path,
) -> None:
    """Issue 29, item 5: with V07.max raised to the source column's limit, a line of 981,261,454 units was
    stored as processed with a wrapped, negative allowed amount: fee cents x units x 10^5 passes 2^63 once
    the fee passes $429 at 2^31-1 units. Now such a line is its charge (the exact amount is far above
    it), every claim is in the warehouse once and reconcile finds nothing."""
    path = tmp_path / "payer.toml"
    path.write_text("[V07]\nmax = 2147483647\n")
    claims = read_source("SELECT *, false AS recovered FROM staging.etl_claims")
    lines = read_source("SELECT * FROM staging.etl_claim_lines")
    frames = read_frames(seeded)
    checked = validate(claims, lines, frames, run_date=RUN_DATE)
    priced = price(checked.accepted_claims, checked.accepted_lines, frames).lines
    payable = priced.filter(~pl.col("pricing_note").str.starts_with("STATUS_"))
    line = payable.sort("fee_schedule_cents", descending=True).row(0, named=True)
    units = _units_that_would_wrap_below(line["fee_schedule_cents"], line["charge_cents"])
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute(
            "UPDATE staging.claim_lines SET units = %s WHERE claim_id = %s AND line_number = %s",
            [units, line["claim_id"], line["line_number"]],
        )
    settings = seeded.model_copy(update={"rules_file": path})
    expected = _expected(settings)[0].get_column("claim_id")
    assert line["claim_id"] in expected.to_list()  # accepted under the file

    result = claims_etl.run(settings)

    stored = read_target(
        "SELECT allowed_amount, units FROM warehouse.priced_claim_lines "
        f"WHERE claim_id = {line['claim_id']} AND line_number = {line['line_number']}"
    ).row(0, named=True)
    assert stored["units"] == units
    assert stored["allowed_amount"] * 100 == line["charge_cents"]
    assert read_target("SELECT count(*) AS n FROM warehouse.priced_claim_lines WHERE allowed_amount < 0").item() == 0
    assert result.claims_priced == expected.len()
    code, report = reconcile(settings)
    assert code == 0, report
