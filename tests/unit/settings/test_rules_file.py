"""The payer's rules file (docs/spec.md §5.1): each parameter changes exactly the claims it should, a
disabled rule never fires, a warn rule accepts and reports, custom expressions reject what they say,
and every malformed file is refused whole with one line naming the key."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings
from claims_etl.settings.rules_file import DEFAULT_RULES, RulesConfig, load_rules, parse_rules
from claims_etl.stages.price import price
from claims_etl.stages.rules import rule_table
from claims_etl.stages.validate import validate
from tests.factories import OTHER_VALID_NPI, claim, claims_frame, line, lines_frame
from tests.unit.stages.test_validate import REFERENCE, RUN_DATE

SERVICE = date(2026, 3, 2)


def rules(text: str) -> RulesConfig:
    return parse_rules(text).config


def outcome(config: RulesConfig | None, claims: list[dict[str, Any]], lines: list[dict[str, Any]]) -> dict[int, str]:
    """claim_id -> its rejecting rule ids ("" for accepted), and warnings as "warn:<ids>"."""
    result = validate(claims_frame(*claims), lines_frame(*lines), REFERENCE, run_date=RUN_DATE, rules=config)
    warned = result.warnings.group_by("claim_id").agg(pl.col("rule_id").sort().str.join(","))
    accepted = dict.fromkeys(result.accepted_claims.get_column("claim_id").to_list(), "")
    accepted |= {claim_id: f"warn:{ids}" for claim_id, ids in warned.iter_rows()}
    return accepted | dict(result.rejected.select("claim_id", "rule_ids").iter_rows())


def received_after(days_list: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A claim per entry, received that many days after its one line's service date."""
    claims = [claim(claim_id=i + 1, received_date=SERVICE + timedelta(days=d)) for i, d in enumerate(days_list)]
    lines = [line(claim_id=i + 1, service_date=SERVICE) for i in range(len(days_list))]
    return claims, lines


def test_no_file_and_an_empty_file_are_the_contract_exactly() -> None:
    claims = [claim(claim_id=i, billing_npi="1234567890" if i % 3 == 0 else OTHER_VALID_NPI) for i in range(1, 10)]
    lines = [line(claim_id=i, units=i * 200) for i in range(1, 10)]
    default = validate(claims_frame(*claims), lines_frame(*lines), REFERENCE, run_date=RUN_DATE)
    configured = validate(claims_frame(*claims), lines_frame(*lines), REFERENCE, run_date=RUN_DATE, rules=rules(""))
    for name in ("accepted_claims", "accepted_lines", "rejected", "accepted_keyed_lines", "warnings"):
        assert_frame_equal(getattr(default, name), getattr(configured, name))
    assert default.rejected.height == 6 and default.warnings.is_empty()
    assert parse_rules("").sha256 == DEFAULT_RULES.sha256


def test_timely_filing_90_days_rejects_exactly_the_claims_past_90_days() -> None:
    claims, lines = received_after([0, 90, 91, 200, 365, 366])
    assert outcome(None, claims, lines) == {1: "", 2: "", 3: "", 4: "", 5: "", 6: "V10"}
    assert outcome(rules("[V10]\ndays = 90"), claims, lines) == {1: "", 2: "", 3: "V10", 4: "V10", 5: "V10", 6: "V10"}


def test_timely_filing_365_keeps_the_calendar_year_and_its_29_february_rule() -> None:
    leap = date(2024, 2, 29)  # + 1 year = 2025-02-28
    claims = [claim(claim_id=1, received_date=date(2025, 2, 28)), claim(claim_id=2, received_date=date(2025, 3, 1))]
    lines = [line(claim_id=1, service_date=leap), line(claim_id=2, service_date=leap)]
    explicit = outcome(rules("[V10]\ndays = 365"), claims, lines)
    assert explicit == outcome(None, claims, lines)
    assert [("V10" in explicit[1]), ("V10" in explicit[2])] == [False, True]
    days_366 = outcome(rules("[V10]\ndays = 366"), claims, lines)  # a plain day count: 2025-02-28 is day 365
    assert [("V10" in days_366[1]), ("V10" in days_366[2])] == [False, False]


def test_unit_bounds() -> None:
    claims = [claim(claim_id=i, total_charge_cents=20_000) for i in (1, 2, 3, 4)]
    lines = [line(claim_id=i, units=u) for i, u in zip((1, 2, 3, 4), (1, 2, 10, 11), strict=True)]
    assert outcome(rules("[V07]\nmin = 2\nmax = 10"), claims, lines) == {1: "V07", 2: "", 3: "", 4: "V07"}
    assert outcome(None, claims, lines) == {1: "", 2: "", 3: "", 4: ""}


def test_pos_codes_list_replaces_the_cms_list_on_claims_and_lines() -> None:
    config = rules('[V11]\ncodes = ["11", "22"]')
    claims = [claim(claim_id=1), claim(claim_id=2, place_of_service="12"), claim(claim_id=3), claim(claim_id=4)]
    lines = [
        line(claim_id=1),
        line(claim_id=2),
        line(claim_id=3, place_of_service="22"),
        line(claim_id=4, place_of_service="21"),
    ]
    assert outcome(config, claims, lines) == {1: "", 2: "V11", 3: "", 4: "V11"}
    assert outcome(None, claims, lines) == {1: "", 2: "", 3: "", 4: ""}


def test_npi_check_digit_off_checks_only_the_shape() -> None:
    claims = [
        claim(claim_id=1, billing_npi="1234567890"),
        claim(claim_id=2, billing_npi="3234567893"),
        claim(claim_id=3, rendering_npi="1245319598"),
    ]
    lines = [line(claim_id=i) for i in (1, 2, 3)]
    assert outcome(None, claims, lines) == {1: "V01", 2: "V01", 3: "V02"}
    assert outcome(rules("[V01]\nluhn = false"), claims, lines) == {1: "", 2: "V01", 3: "V02"}
    assert outcome(rules("[V02]\nluhn = false"), claims, lines) == {1: "V01", 2: "V01", 3: ""}


def test_facility_pos_set_changes_prices_only_where_it_differs() -> None:
    config = rules('[pricing]\nfacility_pos = ["11"]')
    claims = claims_frame(claim(claim_id=1), claim(claim_id=2, place_of_service="21"))
    lines = lines_frame(line(claim_id=1), line(claim_id=2))
    checked = validate(claims, lines, REFERENCE, run_date=RUN_DATE, rules=config)
    facility = checked.accepted_keyed_lines.select("claim_id", "is_facility").rows()
    assert facility == [(1, True), (2, False)]
    default, configured = price(claims, lines, REFERENCE), price(claims, lines, REFERENCE, rules=config)
    assert default.lines.select("facility", "fee_schedule_cents").rows() == [(0, 13_561), (1, 8_450)]
    assert configured.lines.select("facility", "fee_schedule_cents").rows() == [(1, 8_450), (0, 13_561)]


@pytest.mark.parametrize(
    ("rule_id", "claim_overrides", "line_overrides"),
    [
        ("V01", {"billing_npi": "1234567890"}, {}),
        ("V03", {"diagnosis_1": ""}, {}),
        ("V04", {}, {"procedure_code": "G010"}),
        ("V07", {}, {"units": 0}),
        ("V08", {"total_charge_cents": 0}, {"charge_cents": 0}),
        ("V09", {}, {"service_date": date(2026, 11, 2)}),
        ("V10", {"received_date": date(2027, 3, 3)}, {}),
        ("V11", {"place_of_service": "00"}, {}),
        ("V13", {"total_charge_cents": 19_999}, {}),
    ],
)
def test_a_disabled_rule_never_fires_and_a_warn_rule_accepts_and_reports(
    rule_id: str, claim_overrides: dict[str, Any], line_overrides: dict[str, Any]
) -> None:
    claims = [claim(**claim_overrides)]
    lines = [line(**line_overrides)]
    if rule_id == "V04":  # a malformed code has no RVU row either: V05 would reject it still
        assert outcome(rules(f"[{rule_id}]\nenabled = false"), claims, lines) == {1: "V05"}
        return
    assert outcome(None, claims, lines) == {1: rule_id}
    assert outcome(rules(f"[{rule_id}]\nenabled = false"), claims, lines) == {1: ""}
    assert outcome(rules(f'[{rule_id}]\nseverity = "warn"'), claims, lines) == {1: f"warn:{rule_id}"}


def test_warn_and_reject_together_reject_with_only_the_rejecting_ids() -> None:
    config = rules('[V13]\nseverity = "warn"')
    claims = [claim(claim_id=1, total_charge_cents=1), claim(claim_id=2, total_charge_cents=1, billing_npi="1")]
    assert outcome(config, claims, [line(claim_id=1), line(claim_id=2)]) == {1: "warn:V13", 2: "V01"}


CUSTOM = """
[[custom]]
id = "C01"
level = "line"
description = "more than 4 units"
expression = "units > 4"

[[custom]]
id = "C02"
level = "claim"
description = "office claims with 2 lines or more"
expression = "place_of_service = '11' AND line_count >= 2"
severity = "warn"

[[custom]]
id = "C03"
level = "line"
description = "received the day of service"
expression = "received_date = service_date"
enabled = false
"""


def test_custom_rules_reject_and_warn_what_they_say() -> None:
    claims = [claim(claim_id=i, total_charge_cents=40_000 if i == 3 else 20_000) for i in (1, 2, 3)]
    lines = [
        line(claim_id=1, units=5),
        line(claim_id=2, units=4),
        line(claim_id=3),
        line(claim_id=3, line_number=2, procedure_code="99213", charge_cents=20_000),
    ]
    assert outcome(rules(CUSTOM), claims, lines) == {1: "C01", 2: "", 3: "warn:C02"}
    assert outcome(rules(CUSTOM + '\n[V13]\nseverity = "warn"'), [*claims[:2], claim(claim_id=3)], lines) == {
        1: "C01",
        2: "",
        3: "warn:C02,V13",
    }


def test_rules_list_rows_show_what_is_in_force() -> None:
    table = {row["id"]: row for row in rule_table(rules(CUSTOM + "[V10]\ndays = 90\n[V12]\nenabled = false"))}
    assert table["V10"]["parameters"] == {"days": 90}
    assert (table["V11"]["level"], table["V12"]["enabled"], table["C02"]["severity"]) == ("claim+line", False, "warn")
    assert table["C01"]["parameters"] == {"expression": "units > 4"}
    assert len(table["pricing"]["parameters"]["facility_pos"]) == 16
    assert len(table) == 17 + 3 + 1


MALFORMED = [
    ("[V10]\ndays = '90'", "V10.days: Input should be a valid integer"),
    ("[V10]\ndays = 0", "V10.days: Input should be greater than or equal to 1"),
    ("[V10]\ndayz = 90", "V10.dayz: Extra inputs are not permitted"),
    ("[V99]\nenabled = false", "V99: Extra inputs are not permitted"),
    ("[V03]\nenabled = 'no'", "V03.enabled: Input should be a valid boolean"),
    ("[V03]\nseverity = 'error'", "V03.severity: Input should be 'reject' or 'warn'"),
    ("[V05]\nenabled = false", "V05.enabled: Input should be True"),
    ("[V15]\nseverity = 'warn'", "V15.severity: Input should be 'reject'"),
    ("[V07]\nmin = 10\nmax = 2", "V07: Value error, min 10 is above max 2"),
    ("[V11]\ncodes = ['1']", "V11.codes[0]: String should match pattern"),
    ("[pricing]\nfacility_pos = '21'", "pricing.facility_pos: Input should be a valid list"),
    ("[V10\ndays = 90", "not TOML"),
    ("[[custom]]\nid = 'V16'\nlevel = 'line'\ndescription = 'x'\nexpression = 'units > 1'", "reserved"),
    ("[[custom]]\nid = 'C1'\nlevel = 'line'\ndescription = 'x'\nexpression = 'unitz > 1'", 'column "unitz"'),
    ("[[custom]]\nid = 'C1'\nlevel = 'claim'\ndescription = 'x'\nexpression = 'units > 1'", 'column "units"'),
    ("[[custom]]\nid = 'C1'\nlevel = 'line'\ndescription = 'x'\nexpression = 'units >'", "custom[0]: Value error"),
    ("[[custom]]\nid = 'C1'\nlevel = 'line'\ndescription = 'x'\nexpression = 'units + 1'", "not true/false"),
    ("[[custom]]\nid = 'C1'\nlevel = 'line'\ndescription = 'x'", "custom[0].expression: Field required"),
    ("[[custom]]\nid = 'C1'\nlevel = 'row'\ndescription = 'x'\nexpression = 'units > 1'", "custom[0].level"),
    ("[[custom]]\nid='C1'\nlevel='line'\ndescription='x'\nexpression='units > 1'\n" * 2, "given twice: C1"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_a_malformed_rules_file_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=r"^rules file .*rules\.toml: ") as raised:
        Settings(rules_file=path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_settings_read_the_file_once_and_carry_it(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[V10]\ndays = 90\n")
    settings = Settings(rules_file=path)
    path.write_text("[V10]\ndays = 'broken'\n")  # a run goes on with the file it started with
    assert settings.model_copy(update={"run_date": RUN_DATE}).rules().config.V10.days == 90
    assert settings.rules().record()["rules"] == "[V10]\ndays = 90\n"
    assert Settings().rules() is DEFAULT_RULES


@pytest.mark.parametrize(
    "path",
    [
        "docs/rules.example.toml",
        "benchmarks/rules/five-custom-quiet.toml",
        "benchmarks/rules/five-custom-rejecting.toml",
    ],
)
def test_shipped_rules_files_are_valid(path: str) -> None:
    loaded = load_rules(Path(__file__).resolve().parents[3] / path)
    assert loaded.config != RulesConfig()
    assert len(loaded.sha256) == 64
