"""`claims-etl explain` on the real source: after `claims-etl seed` and a run, every claim's explanation
agrees with what the run wrote (each priced line's allowed amount and note, each rejected claim's rule
ids), its worked steps check, and an unknown claim id is one error line (docs/spec.md §6)."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from claims_etl.engine import explain
from claims_etl.settings import Settings
from tests.db import SOURCE_URL, cli_env, read_source, run_cli
from tests.factories import VALID_NPI
from tests.unit.cli.test_app import assert_one_clear_line

IMAGING_CLAIM = 900_001


def _explain_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", "explain", *args],
        env=cli_env(settings), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _add_imaging_claim() -> None:
    """Two seeded codes with 26 rows become diagnostic imaging (MULT PROC 4), the first capped by OPPS
    PE and MP RVUs of half its PE and all its MP, and a pending claim bills them on one day (one of
    them twice), so the run prices a PC/TC split, the MPPR and the OPPS cap."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:
        codes = [
            row[0]
            for row in source.execute(
                "SELECT hcpcs FROM staging.rvu WHERE release = '2026A' AND modifier = '26' AND status_code = 'A' "
                "ORDER BY hcpcs LIMIT 2"
            )
        ]
        source.execute("UPDATE staging.rvu SET mult_proc = '4' WHERE release = '2026A' AND hcpcs = ANY(%s)", [codes])
        source.execute(
            "UPDATE staging.rvu SET opps_nonfac_pe_rvu = nonfac_pe_rvu / 2, opps_facility_pe_rvu = facility_pe_rvu / 2,"
            " opps_mp_rvu = mp_rvu WHERE release = '2026A' AND hcpcs = %s AND modifier = ''",
            [codes[0]],
        )
        source.execute(
            "INSERT INTO staging.claims (claim_id, batch_id, patient_id, patient_dob, billing_npi, mac, locality, "
            "place_of_service, diagnosis_1, total_charge, received_date) VALUES "
            "(%s, 'explain', 'SYNEXPLAIN', DATE '1960-05-17', %s, '01112', '05', '11', 'R10.9', 6000.00, "
            "DATE '2026-03-10')",
            [IMAGING_CLAIM, VALID_NPI],
        )
        for number, (code, units) in enumerate([(codes[0], 1), (codes[1], 2), (codes[0], 1)], start=1):
            day = "2026-03-02" if number < 3 else "2026-03-03"
            source.execute(
                "INSERT INTO staging.claim_lines (claim_id, line_number, service_date, procedure_code, units, charge) "
                "VALUES (%s, %s, %s, %s, %s, 2000.00)",
                [IMAGING_CLAIM, number, day, code, units],
            )


@pytest.fixture
def processed(pg_settings: Settings) -> Settings:
    env = cli_env(pg_settings)
    seeded = subprocess.run(
        [sys.executable, "-m", "claims_etl", "seed", "--claims", "150", "--seed", "7"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    _add_imaging_claim()
    done = run_cli(env)
    assert done.returncode == 0, done.stderr
    return pg_settings


def _warehouse_lines(claim_id: int) -> list[tuple[int, str, str]]:
    lines = read_source(
        "SELECT line_number, allowed_amount::text AS allowed, pricing_note FROM warehouse.priced_claim_lines "
        f"WHERE claim_id = {claim_id} ORDER BY line_number"
    )
    return [(int(number), allowed, note) for number, allowed, note in lines.iter_rows()]


def test_explain_json_gives_the_warehouse_amounts_and_an_unknown_claim_one_error_line(processed: Settings) -> None:
    result = _explain_cli(processed, str(IMAGING_CLAIM), "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["claim_id"], found["status"], found["outcome"], found["consistent"]) == (
        IMAGING_CLAIM,
        "processed",
        "accepted",
        True,
    )
    explained = [(line["line_number"], line["allowed"], line["pricing_note"]) for line in found["lines"]]
    assert explained == _warehouse_lines(IMAGING_CLAIM)
    assert (
        found["total_allowed"]
        == read_source(
            f"SELECT total_allowed::text FROM warehouse.priced_claims WHERE claim_id = {IMAGING_CLAIM}"
        ).item()
    )
    worked = {step["step"] for line in found["lines"] for step in line["steps"]}
    assert {"pfs_amount", "opps_amount", "professional_component", "mppr_tc", "opps_cap", "allowed"} <= worked
    assert found["lines"][0]["inputs"]["release"]["rvu_sha256"]  # the release's file, from reference_releases
    text = _explain_cli(processed, str(IMAGING_CLAIM))
    assert text.returncode == 0 and "every step worked out above equals the engine's amount" in text.stdout
    for shown in (result.stdout, text.stdout):
        assert "1960-05-17" not in shown and "SYN" not in shown and VALID_NPI not in shown  # no PHI

    assert_one_clear_line(_explain_cli(processed, "987654321"), 2, "no claim 987654321 in the source")


def test_every_claim_explained_agrees_with_the_run(processed: Settings) -> None:
    claims = read_source("SELECT claim_id, status FROM staging.claims ORDER BY claim_id")
    rejected = dict(read_source("SELECT claim_id, rule_ids FROM warehouse.rejected_claims").iter_rows())
    assert set(claims.get_column("status")) == {"processed", "rejected"} and rejected
    for claim_id, status in claims.iter_rows():
        found = explain.explain(processed, claim_id)
        assert found["status"] == status and found["consistent"], found["inconsistencies"]
        if status == "rejected":
            assert (found["outcome"], ",".join(found["rule_ids"])) == ("rejected", rejected[claim_id])
        else:
            explained = [(line["line_number"], line["allowed"], line["pricing_note"]) for line in found["lines"]]
            assert (found["outcome"], explained) == ("accepted", _warehouse_lines(claim_id))
