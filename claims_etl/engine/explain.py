"""`claims-etl explain CLAIM_ID`: one claim's price, line by line, as a worked computation a payer's
analyst can check by hand (docs/spec.md §4, §6).

The claim is validated and priced exactly as a run would price it now (`validate`, then
`price.priced_detail` on the lines validate keyed, with the settings' run date, rules file and
facility set, and the reference frames a run reads); `engine.worked` writes each step out in exact
decimals and checks it against the engine's integers.

Invariant: nothing is written anywhere (one connectorx read of the claim, the reference frames, the
releases' metadata). The explanation names claim and line numbers, codes, modifiers, amounts, rule ids,
service dates and reference files: never patient_dob, names or NPIs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from claims_etl.db import sql
from claims_etl.db.source_reads import read_frame
from claims_etl.engine import worked
from claims_etl.engine.worked_steps import line_steps, mismatches
from claims_etl.errors import ConfigurationError
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cache import reference_frames
from claims_etl.reference.store import list_releases
from claims_etl.schemas import CLAIMS, LINES, conform
from claims_etl.settings import Settings
from claims_etl.settings.rules_file import RulesConfig
from claims_etl.stages.extract import Extracted, split_rows
from claims_etl.stages.keying import key_lines
from claims_etl.stages.price import priced_detail
from claims_etl.stages.rules import DEFAULT_CONFIG, claim_rules, facility_pos, line_rules
from claims_etl.stages.validate import Validated, validate

SCHEMA_VERSION = 1
# The release metadata shown per line (`claims-etl reference list`'s columns).
_RELEASE_FILES = ("rvu_file", "rvu_sha256", "gpci_file", "gpci_sha256", "work_gpci", "qp_source")


def read_claim(settings: Settings, claim_id: int) -> tuple[Extracted, str]:
    """The claim (any status) and its lines, read in one statement (queries/extract/claim.sql) and split
    as a run's extract splits them, and its status in the source. ConfigurationError (exit 2, as for an
    unknown run or release) when there is no such claim."""
    rows = read_frame(settings, sql.render("extract/claim", claim_id=claim_id), stage="extract")
    read = split_rows(rows, what="explained")
    if read.claims.is_empty():
        raise ConfigurationError(f"no claim {claim_id} in the source")
    return read, str(rows.filter(~pl.col("is_line")).get_column("status").item())


def explain(settings: Settings, claim_id: int) -> dict[str, Any]:
    """The explanation of one claim in the source (`explanation`), with the rules file in force."""
    read, status = read_claim(settings, claim_id)
    reference, _cache = reference_frames(settings)
    rule_set = settings.rules()
    found = explanation(
        read.claims,
        read.lines,
        reference,
        run_date=settings.effective_run_date(),
        rules=rule_set.config,
        releases=list_releases(settings),
        status=status,
    )
    return found | {"rules_file": rule_set.path, "rules_sha256": rule_set.sha256}


def explanation(
    claims: pl.DataFrame,
    lines: pl.DataFrame,
    reference: ReferenceFrames,
    *,
    run_date: date,
    rules: RulesConfig | None = None,
    releases: Sequence[Mapping[str, Any]] = (),
    status: str | None = None,
) -> dict[str, Any]:
    """One claim validated and, if accepted, priced, as a JSON-ready document; no I/O.

    Invariant: the amounts are the engine's (`validate`, then `price.priced_detail` on the lines
    validate keyed, as a run prices them); each step's formula is worked out again in `Decimal` from
    the inputs shown (`engine.worked`), and `consistent` is false, with `inconsistencies` naming each,
    where the two differ. Money is exact decimal strings.

    Parameters
    ----------
    claims, lines : polars.DataFrame
        The one claim (`schemas.CLAIMS`) and its lines (`schemas.LINES`).
    reference : ReferenceFrames
        The fee schedule a run would price with now.
    run_date : datetime.date
        V09's "today".
    rules : RulesConfig, optional
        The rules file in force (rules, facility places of service); the contract's without it.
    releases : sequence of mappings, optional
        The releases' metadata (`reference.store.list_releases`): each line names its release's files.
    status : str, optional
        The claim's status in the source, shown as read.

    Returns
    -------
    dict
        `schema_version`, `claim_id`, `status`, `outcome` (accepted or rejected), `rule_ids`, `lines`
        (each with `inputs` and `steps` of {step, formula, amount}, or a rejected claim's `rule_ids`),
        `total_allowed`, `consistent`, `inconsistencies`.

    Examples
    --------
    CMS's 99214 in an office, every GPCI 1.0:

    >>> from datetime import date
    >>> import polars as pl
    >>> import claims_etl as ce
    >>> from claims_etl.schemas import CLAIMS, GPCI, LINES, RVU
    >>> rvu = pl.DataFrame([{"year": 2026, "hcpcs": "99214", "modifier": "", "status_code": "A",
    ...     "work_rvu_e4": 19_200, "nonfac_pe_rvu_e4": 20_000, "facility_pe_rvu_e4": 4_700,
    ...     "mp_rvu_e4": 1_400, "conv_factor_e4": 334_009}], schema=RVU)
    >>> gpci = pl.DataFrame([{"year": 2026, "mac": "01112", "locality": "05", "pw_gpci_e4": 10_000,
    ...     "pe_gpci_e4": 10_000, "mp_gpci_e4": 10_000}], schema=GPCI)
    >>> claim = {"claim_id": 1, "billing_npi": "1234567893", "mac": "01112", "locality": "05",
    ...     "place_of_service": "11", "diagnosis_1": "E11.9", "total_charge_cents": 20_000,
    ...     "received_date": date(2026, 3, 10)}
    >>> line = {"claim_id": 1, "line_number": 1, "service_date": date(2026, 3, 2), "procedure_code": "99214",
    ...     "units": 1, "charge_cents": 20_000}
    >>> found = explanation(pl.DataFrame([claim], schema=CLAIMS), pl.DataFrame([line], schema=LINES),
    ...     ce.ReferenceFrames(rvu=rvu, gpci=gpci), run_date=date(2026, 11, 1))
    >>> found["outcome"], found["total_allowed"], found["consistent"]
    ('accepted', '135.61', True)
    >>> found["lines"][0]["steps"][0]["formula"]
    'per unit: (1.92 x 1.000 + 2.00 x 1.000 + 0.14 x 1.000) x 33.4009 = 135.61'
    """
    claims, lines = conform(claims, CLAIMS, name="claims"), conform(lines, LINES, name="lines")
    if claims.height != 1:
        raise ValueError(f"explain one claim at a time, not {claims.height}")
    lines = lines.sort("line_number")
    config = DEFAULT_CONFIG if rules is None else rules
    validated = validate(claims, lines, reference, run_date=run_date, rules=config)
    claim = claims.row(0, named=True)
    head: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "claim_id": claim["claim_id"],
        "status": status,
        "run_date": run_date.isoformat(),
        "mac": claim["mac"],
        "locality": claim["locality"],
        "place_of_service": claim["place_of_service"],
        "line_count": lines.height,
        "total_charge": _money_or_none(claim["total_charge_cents"]),
    }
    if not validated.rejected.is_empty():
        return head | _rejected(validated, claims, lines, reference, run_date, config)
    return head | _accepted(validated, claim, reference, releases, config)


def _money_or_none(value: int | None) -> str | None:
    return None if value is None else worked.money(worked.cents(value))


def _line_head(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "line_number": row["line_number"],
        "procedure_code": row["procedure_code"],
        "modifiers": worked.present_modifiers(row),
        "units": row["units"],
        "charge": _money_or_none(row["charge_cents"]),
        "service_date": None if row["service_date"] is None else row["service_date"].isoformat(),
    }


def _descriptions(run_date: date, config: RulesConfig) -> dict[str, str]:
    return {rule.id: rule.description for rule in [*claim_rules(config), *line_rules(run_date, config)]}


def _rejected(
    validated: Validated,
    claims: pl.DataFrame,
    lines: pl.DataFrame,
    reference: ReferenceFrames,
    run_date: date,
    config: RulesConfig,
) -> dict[str, Any]:
    """The rule ids the claim broke (sorted, as `rejected_claims` holds them), and per line the line
    rules it broke: each line rule evaluated once over the claim's keyed lines."""
    rule_ids = str(validated.rejected.get_column("rule_ids").item()).split(",")
    rejecting = [rule for rule in line_rules(run_date, config) if rule.severity == "reject"]
    keyed = key_lines(lines, claims, reference, facility_pos=facility_pos(config))
    broken = keyed.select("line_number", *(rule.broken.alias(str(n)) for n, rule in enumerate(rejecting)))
    per_line = {
        row["line_number"]: sorted({rule.id for n, rule in enumerate(rejecting) if row[str(n)]})
        for row in broken.iter_rows(named=True)
    }
    descriptions = _descriptions(run_date, config)
    return {
        "outcome": "rejected",
        "rule_ids": rule_ids,
        "rules": {rule_id: descriptions.get(rule_id, "") for rule_id in rule_ids},
        "lines": [_line_head(row) | {"rule_ids": per_line[row["line_number"]]} for row in lines.iter_rows(named=True)],
        "total_allowed": None,
        "consistent": True,
        "inconsistencies": [],
    }


def _accepted(
    validated: Validated,
    claim: Mapping[str, Any],
    reference: ReferenceFrames,
    releases: Sequence[Mapping[str, Any]],
    config: RulesConfig,
) -> dict[str, Any]:
    """Every line priced as the run prices it (`priced_detail` of the lines validate keyed), each step
    worked out (`engine.worked`), and the claim's total."""
    detail = priced_detail(validated.accepted_keyed_lines, reference).with_columns(
        pl.col("rvu_release").cast(pl.String)
    )
    rows = detail.sort("line_number").to_dicts()
    lines = worked.work_out(rows)
    explained = []
    for line in lines:
        inputs = _inputs(line.row, claim, reference, releases, config)
        line.status = inputs["rvu_row"]["status_code"]
        explained.append(_priced_line(line, lines, inputs))
    total = worked.cents(sum(int(row["allowed_cents"]) for row in rows))
    problems = mismatches(lines)
    settings = [(line["line_number"], line["inputs"]["place_of_service"]) for line in explained]
    problems += [
        f"line {number}: POS {pos['code']} is {'' if pos['facility_worked'] else 'not '}a facility, "
        f"the engine priced it as {'a facility' if pos['facility'] else 'non-facility'}"
        for number, pos in settings
        if pos["facility_worked"] != pos["facility"]
    ]
    if sum((line.allowed for line in lines), Decimal(0)) != total:
        problems.append(f"claim total: the worked allowed amounts do not add up to the engine's {worked.money(total)}")
    return {
        "outcome": "accepted",
        "rule_ids": [],
        "warnings": sorted(validated.warnings.get_column("rule_id").to_list()),
        "lines": explained,
        "total_allowed": worked.money(total),
        "consistent": not problems,
        "inconsistencies": problems,
    }


def _priced_line(line: worked.Line, lines: list[worked.Line], inputs: dict[str, Any]) -> dict[str, Any]:
    row = line.row
    return _line_head(row) | {
        "inputs": inputs,
        "steps": line_steps(line, lines),
        "fee_schedule_amount": worked.money(worked.cents(row["fee_schedule_cents"])),
        "opps_amount": _money_or_none(row["opps_cents"]),
        "adjustment_factor": worked.shown(Decimal(row["adjustment_factor_e5"]).scaleb(-5), 1),
        "allowed": worked.money(worked.cents(row["allowed_cents"])),
        "pricing_note": row["pricing_note"],
    }


def _inputs(
    row: Mapping[str, Any],
    claim: Mapping[str, Any],
    reference: ReferenceFrames,
    releases: Sequence[Mapping[str, Any]],
    config: RulesConfig,
) -> dict[str, Any]:
    """What the line was priced with: the release in force on its service date and its files, its
    place of service and setting, its RVU row, the claim's GPCI row, the conversion factor."""
    return {
        "release": _release(str(row["rvu_release"]), reference, releases),
        "place_of_service": _setting(row, claim, config),
        "rvu_row": _rvu_row(row, reference),
        "gpci_row": {
            "mac": claim["mac"],
            "locality": claim["locality"],
            **{f"{name}_gpci": worked.shown(worked.e4(row[f"{name}_gpci_e4"]), 3) for name in ("pw", "pe", "mp")},
        },
        "conversion_factor": _conversion_factor(row),
    }


def _release(label: str, reference: ReferenceFrames, releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The release's label and effective date (the frames the line was priced with), and its files as
    loaded (null where the metadata was not given, e.g. frames built by hand)."""
    in_force = reference.releases.filter(pl.col("release") == label).get_column("effective_from")
    loaded = next((release for release in releases if release.get("release") == label), {})
    return {
        "label": label,
        "effective_from": in_force.item().isoformat() if in_force.len() == 1 else None,
        **{name: loaded.get(name) for name in _RELEASE_FILES},
    }


def _setting(row: Mapping[str, Any], claim: Mapping[str, Any], config: RulesConfig) -> dict[str, Any]:
    """§4.1: the line's place of service, else the claim's, and whether it is a facility (the engine's
    `is_facility`; `facility_worked` is this POS looked up in the facility set, which must agree)."""
    line_pos = row["place_of_service"]
    from_line = line_pos is not None and line_pos.strip() != ""
    pos = line_pos if from_line else claim["place_of_service"]
    return {
        "code": pos,
        "from": "line" if from_line else "claim",
        "facility": bool(row["is_facility"]),
        "facility_worked": pos is not None and pos in facility_pos(config),
        "facility_set": "contract" if config.pricing.facility_pos is None else "rules file",
    }


def _rvu_row(row: Mapping[str, Any], reference: ReferenceFrames) -> dict[str, Any]:
    """The RVU row the line was priced with (release, HCPCS, MOD by §4.2): its indicators from the
    reference frame, its RVUs as the engine joined them, and which PE RVU the setting picks."""
    modifier = worked.PRICING_MODIFIERS.get(int(row["pricing_modifier_bit"] or 0), "")
    indicators = (
        reference.rvu.filter(
            (pl.col("release") == row["rvu_release"])
            & (pl.col("hcpcs") == row["procedure_code"])
            & (pl.col("modifier") == modifier)
        )
        .select("status_code", "pctc_ind", "mult_proc", "bilat_surg", "co_surg")
        .to_dicts()
    )
    setting = "facility" if row["is_facility"] else "nonfac"
    rvus = {
        "work_rvu": worked.shown(worked.e4(row["work_rvu_e4"]), 2),
        "pe_rvu": worked.shown(worked.e4(row[f"{setting}_pe_rvu_e4"]), 2),
        "pe_rvu_used": "facility" if row["is_facility"] else "non-facility",
        "mp_rvu": worked.shown(worked.e4(row["mp_rvu_e4"]), 2),
    }
    if row["opps_cents"] is not None:
        rvus["opps_pe_rvu"] = worked.shown(worked.e4(row[f"opps_{setting}_pe_rvu_e4"]), 2)
        rvus["opps_mp_rvu"] = worked.shown(worked.e4(row["opps_mp_rvu_e4"]), 2)
    empty = dict.fromkeys(("status_code", "pctc_ind", "mult_proc", "bilat_surg", "co_surg"))
    return {"hcpcs": row["procedure_code"], "modifier": modifier, **(indicators[0] if indicators else empty), **rvus}


def _conversion_factor(row: Mapping[str, Any]) -> dict[str, Any]:
    """§4.3 and §7: the QP factor for a claim whose NPI (rendering, else billing) is on its service
    year's QP list, where the release has one; the PPRRVU file's otherwise, and why."""
    qp = row["cf_kind"] == "qp"
    if qp:
        why = f"the claim's NPI (rendering, else billing) is on the {row['year']} QP list"
    elif row["qp_conv_factor_e4"] is None:
        on_list = "the claim's NPI is on the QP list, but " if row["qp_listed"] else ""
        why = f"{on_list}the release has no QP conversion factor"
    else:
        why = f"the claim's NPI (rendering, else billing) is not on the {row['year']} QP list"
    factor = row["qp_conv_factor_e4"] if qp else row["conv_factor_e4"]
    return {"value": worked.shown(worked.e4(factor), 4), "kind": "QP" if qp else "non-QP", "why": why}
