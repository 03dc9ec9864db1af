"""The way the replaced system did the job, for comparison: one claim at a time. Per claim: a query
for the claim, a query for its lines, validation and pricing in plain Python (`Decimal`), one INSERT
per row into the warehouse, one status UPDATE, one commit. Reference data is preloaded into dicts
(the old system's in-memory RVU cache). It writes the same rows as the engine, so its output doubles
as an independent check of the vectorized stages (see tests/integration/test_row_at_a_time.py).

It honours the same rules file as the engine (`settings.rules()`, docs/spec.md §5.1): each rule's
enabled/severity and parameters are applied here in plain Python; a custom rule's SQL expression is
evaluated with `polars.sql_expr` on a one-row frame per claim or line (the same parser as the engine,
but row by row), and warn rules' hits on priced claims are written to claim_warnings.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl
import psycopg

from claims_etl.db.connections import connect_target
from claims_etl.settings import Settings
from claims_etl.stages.keying import FACILITY_POS, MODIFIER_PATTERN, PRICING_MODIFIERS
from claims_etl.stages.rules import ICD10_CM, NPI_SHAPE, POS_CODES, PROCEDURE_CODE
from claims_etl.stages.rules_config import RulesConfig, custom_columns

CENT = Decimal("0.01")
CLAIM_SQL = (
    "SELECT claim_id, batch_id, patient_dob, billing_npi, rendering_npi, mac, locality, place_of_service, "
    "diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4, total_charge, received_date FROM staging.claims "
    "WHERE claim_id = %s"
)
LINES_SQL = (
    "SELECT line_number, service_date, procedure_code, modifier_1, modifier_2, modifier_3, modifier_4, units, "
    "charge, place_of_service FROM staging.claim_lines WHERE claim_id = %s ORDER BY line_number"
)


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _npi_ok(npi: str | None, *, luhn: bool = True) -> bool:
    if npi is None or not re.fullmatch(NPI_SHAPE, npi):
        return False
    if not luhn:
        return True
    total = 24
    for i, ch in enumerate(npi[:9]):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def _plus_one_year(day: date) -> date:
    return day.replace(year=day.year + 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year + 1)


def _mods(line: dict[str, Any]) -> list[str | None]:
    return [line[f"modifier_{i}"] for i in range(1, 5)]


def _pricing_mod(line: dict[str, Any]) -> str:
    return next((m for m in _mods(line) if m in PRICING_MODIFIERS), "")


def _release(ref: Any, day: date) -> str | None:
    """The release in force on `day`: the latest of its year whose effective date is on or before it."""
    in_force = [release for effective, release in ref[2].get(day.year, []) if effective <= day]
    return in_force[-1] if in_force else None


def _deadline(service: date, days: int) -> date:
    return _plus_one_year(service) if days == 365 else service + timedelta(days=days)  # 365: a calendar year


def _custom_broken(expression: str, row: dict[str, Any], columns: Any) -> bool:
    """A custom rule on one claim or line: its expression over a one-row frame (null: not broken)."""
    value = pl.DataFrame([{name: row.get(name) for name in columns}], schema=columns).select(pl.sql_expr(expression))
    return value.item() is True


def validate_claim(  # noqa: PLR0912, PLR0915  (one branch per rule, as the replaced system had)
    claim: dict[str, Any],
    lines: list[dict[str, Any]],
    ref: Any,
    run_date: date,
    config: RulesConfig | None = None,
) -> tuple[list[str], list[str]]:
    """The ids of the rules the claim breaks that reject it, and of those that only warn."""
    config = config or RulesConfig()
    pos_codes = POS_CODES if config.V11.codes is None else tuple(config.V11.codes)
    rvu, gpci = ref[0], ref[1]
    broken: set[str] = set()
    if not _npi_ok(claim["billing_npi"], luhn=config.V01.luhn):
        broken.add("V01")
    if _present(claim["rendering_npi"]) and not _npi_ok(claim["rendering_npi"], luhn=config.V02.luhn):
        broken.add("V02")
    diagnoses = [claim[f"diagnosis_{i}"] for i in range(1, 5)]
    if not _present(diagnoses[0]) or any(_present(d) and not re.search(ICD10_CM, d) for d in diagnoses):
        broken.add("V03")
    if claim["place_of_service"] not in pos_codes:
        broken.add("V11")
    if claim["total_charge"] != sum((line["charge"] for line in lines), Decimal(0)):
        broken.add("V13")
    if not lines:
        broken.add("V15")
    seen: set[tuple[Any, ...]] = set()
    for line in lines:
        release, code, mods = _release(ref, line["service_date"]), line["procedure_code"], _mods(line)
        if not re.search(PROCEDURE_CODE, code):
            broken.add("V04")
        if (release, code, _pricing_mod(line)) not in rvu:
            broken.add("V05")
        pctc = rvu.get((release, code, ""), {}).get("pctc_ind")
        has_split = "26" in mods or "TC" in mods
        if (
            any(_present(m) and not re.search(MODIFIER_PATTERN, m) for m in mods)
            or ("26" in mods and "TC" in mods)
            or (has_split and pctc != "1")
        ):
            broken.add("V06")
        if not config.V07.min <= line["units"] <= config.V07.max:
            broken.add("V07")
        if line["charge"] <= 0:
            broken.add("V08")
        dob = claim["patient_dob"]
        if line["service_date"] > run_date or (dob is not None and line["service_date"] < dob):
            broken.add("V09")
        if claim["received_date"] > _deadline(line["service_date"], config.V10.days):
            broken.add("V10")
        if _present(line["place_of_service"]) and line["place_of_service"] not in pos_codes:
            broken.add("V11")
        key = (code, *[m if _present(m) else None for m in mods], line["service_date"])
        if key in seen:
            broken.add("V12")
        seen.add(key)
        if (release, claim["mac"], claim["locality"]) not in gpci:
            broken.add("V14")
    broken = {rule_id for rule_id in broken if config.rule(rule_id).enabled}
    severity = {rule_id: config.rule(rule_id).severity for rule_id in broken}
    claim_row = claim | {
        "total_charge_cents": int(claim["total_charge"] * 100),
        "line_count": len(lines),
        "line_charge_cents": sum(int(line["charge"] * 100) for line in lines),
    }
    for rule in (c for c in config.custom if c.enabled):
        if rule.level == "claim":
            hit = _custom_broken(rule.expression, claim_row, custom_columns("claim"))
        else:
            rows = [
                line
                | {"claim_id": claim["claim_id"], "charge_cents": int(line["charge"] * 100)}
                | {"patient_dob": claim["patient_dob"], "received_date": claim["received_date"]}
                for line in lines
            ]
            hit = any(_custom_broken(rule.expression, row, custom_columns("line")) for row in rows)
        if hit:
            broken.add(rule.id)
            severity[rule.id] = rule.severity
    return (
        sorted(rule_id for rule_id in broken if severity[rule_id] == "reject"),
        sorted(rule_id for rule_id in broken if severity[rule_id] == "warn"),
    )


def price_claim(
    claim: dict[str, Any], lines: list[dict[str, Any]], ref: Any, facility_pos: tuple[str, ...] = FACILITY_POS
) -> list[dict[str, Any]]:
    rvu, gpci, _, qp = ref
    priced = []
    npi = claim["rendering_npi"] if claim["rendering_npi"] is not None else claim["billing_npi"]
    for line in lines:
        release, mods = _release(ref, line["service_date"]), _mods(line)
        row = rvu[(release, line["procedure_code"], _pricing_mod(line))]
        g = gpci[(release, claim["mac"], claim["locality"])]
        as_qp = (line["service_date"].year, npi) in qp and row["qp_conv_factor"] is not None
        conversion_factor = row["qp_conv_factor"] if as_qp else row["conv_factor"]
        pos = line["place_of_service"] if _present(line["place_of_service"]) else claim["place_of_service"]
        facility = pos in facility_pos
        pe = row["facility_pe_rvu"] if facility else row["nonfac_pe_rvu"]
        fee = ((row["work_rvu"] * g["pw"] + pe * g["pe"] + row["mp_rvu"] * g["mp"]) * conversion_factor).quantize(
            CENT, ROUND_HALF_UP
        )
        factor = Decimal(1)
        if "50" in mods and row["bilat_surg"] == "1":
            factor *= Decimal("1.5")
        if any(m in ("80", "81", "82") for m in mods):
            factor *= Decimal("0.16")
        if "AS" in mods:
            factor *= Decimal("0.136")
        if "62" in mods and row["co_surg"] in ("1", "2"):
            factor *= Decimal("0.625")
        priced.append(
            line | {"fee": fee, "factor": factor, "row": row, "facility": facility, "release": release, "qp": as_qp}
        )
    by_day: dict[date, list[dict[str, Any]]] = {}
    for line in priced:
        if line["row"]["mult_proc"] == "2":
            by_day.setdefault(line["service_date"], []).append(line)
    for group in by_day.values():
        top = max(group, key=lambda ln: (ln["fee"] * ln["units"] * ln["factor"], -ln["line_number"]))
        for line in group:
            if line is not top:
                line["factor"] *= Decimal("0.5")
    for line in priced:
        payable = line["row"]["status_code"] in ("A", "R", "T")
        allowed = min(line["charge"], (line["fee"] * line["units"] * line["factor"]).quantize(CENT, ROUND_HALF_UP))
        line["allowed"] = allowed if payable else Decimal(0)
        line["note"] = "" if payable else f"STATUS_{line['row']['status_code']}"
    return priced


def load_reference(connection: psycopg.Connection[Any]) -> tuple[dict[Any, Any], dict[Any, Any], Any, set[Any]]:
    with connection.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        rvu = {
            (r["release"], r["hcpcs"], r["modifier"]): r
            for r in cursor.execute(
                "SELECT release, hcpcs, modifier, status_code, work_rvu, nonfac_pe_rvu, facility_pe_rvu, mp_rvu, "
                "conv_factor, qp_conv_factor, pctc_ind, mult_proc, bilat_surg, co_surg FROM staging.rvu"
            )
        }
        gpci = {
            (r["release"], r["mac"], r["locality"]): {"pw": r["pw_gpci"], "pe": r["pe_gpci"], "mp": r["mp_gpci"]}
            for r in cursor.execute("SELECT release, mac, locality, pw_gpci, pe_gpci, mp_gpci FROM staging.gpci")
        }
        releases: dict[int, list[tuple[date, str]]] = {}
        for r in cursor.execute(
            "SELECT year, effective_from, release FROM staging.reference_releases ORDER BY effective_from"
        ):
            releases.setdefault(r["year"], []).append((r["effective_from"], r["release"]))
        qp = {(r["year"], r["npi"]) for r in cursor.execute("SELECT year, npi FROM staging.qp_npis")}
    return rvu, gpci, releases, qp


def run(settings: Settings, limit: int) -> dict[str, Any]:
    """Process up to `limit` pending claims one at a time; returns counts and claims/s."""
    run_id, run_date = f"row-at-a-time-{int(time.time())}", settings.effective_run_date()
    config = settings.rules().config
    facility_pos = FACILITY_POS if config.pricing.facility_pos is None else tuple(config.pricing.facility_pos)
    target = connect_target(settings)
    cursor = target.connection.cursor()
    priced_claims = rejected = 0
    started = time.perf_counter()
    with psycopg.connect(settings.source_url.get_secret_value(), row_factory=psycopg.rows.dict_row) as source:
        ref = load_reference(source)
        ids = [
            r["claim_id"]
            for r in source.execute(
                "SELECT claim_id FROM staging.claims WHERE status = 'pending' ORDER BY claim_id LIMIT %s", [limit]
            )
        ]
        for claim_id in ids:
            claim: Any = source.execute(CLAIM_SQL, [claim_id]).fetchone()
            lines = list(source.execute(LINES_SQL, [claim_id]))
            now = datetime.now(UTC).replace(tzinfo=None)
            rule_ids, warned = validate_claim(claim, lines, ref, run_date, config)
            if rule_ids:
                cursor.execute(
                    f"INSERT INTO {target.table('rejected_claims')} VALUES (?, ?, ?, ?, ?)",
                    [claim_id, claim["batch_id"], run_id, ",".join(rule_ids), now],
                )
                rejected += 1
            else:
                priced = price_claim(claim, lines, ref, facility_pos)
                total = sum((ln["allowed"] for ln in priced), Decimal(0))
                cursor.execute(
                    f"INSERT INTO {target.table('priced_claims')} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        claim_id,
                        claim["batch_id"],
                        run_id,
                        claim["billing_npi"],
                        claim["mac"],
                        claim["locality"],
                        claim["place_of_service"],
                        len(priced),
                        str(claim["total_charge"]),
                        str(total),
                        now,
                    ],
                )
                for ln in priced:
                    cursor.execute(
                        f"INSERT INTO {target.table('priced_claim_lines')} VALUES ({', '.join('?' * 14)})",
                        [
                            claim_id,
                            ln["line_number"],
                            ln["procedure_code"],
                            ln["modifier_1"],
                            ln["units"],
                            str(ln["charge"]),
                            int(ln["facility"]),
                            str(ln["fee"]),
                            str(ln["factor"].quantize(Decimal("0.00001"))),
                            str(ln["allowed"]),
                            ln["note"],
                            run_id,
                            ln["release"],
                            "qp" if ln["qp"] else "non_qp",
                        ],
                    )
                for rule_id in warned:
                    cursor.execute(
                        f"INSERT INTO {target.table('claim_warnings')} VALUES (?, ?, ?)", [claim_id, rule_id, run_id]
                    )
                priced_claims += 1
            target.connection.commit()
            source.execute(
                "UPDATE staging.claims SET status = %s, run_id = %s, processed_at = now() WHERE claim_id = %s",
                ["rejected" if rule_ids else "processed", run_id, claim_id],
            )
            source.commit()
    seconds = time.perf_counter() - started
    target.close()
    claims = priced_claims + rejected
    return {
        "claims": claims,
        "priced": priced_claims,
        "rejected": rejected,
        "seconds": seconds,
        "claims_per_second": claims / seconds if seconds else 0.0,
    }
