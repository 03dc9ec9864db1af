"""Small literal frames in the stage-boundary schemas: one valid claim by default, overridden per test."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.schemas import CLAIMS, GPCI, LINES, QP_NPIS, RVU, conform

RUN_DATE = date(2026, 11, 1)  # the run date the tests pin (V09's "today")
VALID_NPI = "1234567893"  # CMS's published example NPI (Luhn with prefix 80840)
OTHER_VALID_NPI = "1245319599"


def claim(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "claim_id": 1,
        "batch_id": "b1",
        "patient_dob": date(1960, 5, 17),
        "billing_npi": VALID_NPI,
        "rendering_npi": None,
        "mac": "01112",
        "locality": "05",
        "place_of_service": "11",
        "diagnosis_1": "E11.9",
        "diagnosis_2": None,
        "diagnosis_3": None,
        "diagnosis_4": None,
        "total_charge_cents": 20_000,
        "received_date": date(2026, 3, 10),
        "recovered": False,
    }
    return row | overrides


def line(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "claim_id": 1,
        "line_number": 1,
        "service_date": date(2026, 3, 2),
        "procedure_code": "99214",
        "modifier_1": None,
        "modifier_2": None,
        "modifier_3": None,
        "modifier_4": None,
        "units": 1,
        "charge_cents": 20_000,
        "place_of_service": None,
    }
    return row | overrides


def claims_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return conform(pl.DataFrame(list(rows), schema=CLAIMS), CLAIMS, name="claims")


def lines_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return conform(pl.DataFrame(list(rows), schema=LINES), LINES, name="lines")


def rvu_row(hcpcs: str, work: float, pe_nonfac: float, pe_fac: float, mp: float, **overrides: Any) -> dict[str, Any]:
    """An RVU row; RVUs given in the file's units (2 decimals), stored x 10^4 as in the frames."""
    row: dict[str, Any] = {
        "year": 2026,
        "hcpcs": hcpcs,
        "modifier": "",
        "status_code": "A",
        "work_rvu_e4": round(work * 10_000),
        "nonfac_pe_rvu_e4": round(pe_nonfac * 10_000),
        "facility_pe_rvu_e4": round(pe_fac * 10_000),
        "mp_rvu_e4": round(mp * 10_000),
        "conv_factor_e4": 334_009,
        "pctc_ind": "0",
        "mult_proc": "0",
        "bilat_surg": "0",
        "co_surg": "0",
    }
    return row | overrides


def rvu_e4_row(
    hcpcs: str, modifier: str, work: int, pe_nonfac: int, pe_fac: int, mp: int, **overrides: Any
) -> dict[str, Any]:
    """A 2026 RVU row with every column, RVUs given x 10^4 as the frames hold them (exact, no float on the
    way), conversion factor 1.0, no OPPS cap, no payment indicators: the pricing rules' tests set those."""
    row: dict[str, Any] = {
        "year": 2026,
        "hcpcs": hcpcs,
        "modifier": modifier,
        "status_code": "A",
        "work_rvu_e4": work,
        "nonfac_pe_rvu_e4": pe_nonfac,
        "facility_pe_rvu_e4": pe_fac,
        "mp_rvu_e4": mp,
        "conv_factor_e4": 10_000,
        "pctc_ind": "0",
        "mult_proc": "0",
        "bilat_surg": "0",
        "co_surg": "0",
        "opps_nonfac_pe_rvu_e4": 0,
        "opps_facility_pe_rvu_e4": 0,
        "opps_mp_rvu_e4": 0,
    }
    return row | overrides


def gpci_row(
    mac: str = "01112",
    locality: str = "05",
    pw: int = 10_000,
    pe: int = 10_000,
    mp: int = 10_000,
    year: int = 2026,
) -> dict[str, Any]:
    return {
        "year": year,
        "mac": mac,
        "locality": locality,
        "pw_gpci_e4": pw,
        "pe_gpci_e4": pe,
        "mp_gpci_e4": mp,
    }


def reference(
    rvu_rows: list[dict[str, Any]], gpci_rows: list[dict[str, Any]] | None = None, *, qp_npis: tuple[str, ...] = ()
) -> ReferenceFrames:
    """Reference frames of these rows (one default GPCI row without any); `qp_npis` on the 2026 QP list."""
    return ReferenceFrames(
        rvu=conform(pl.DataFrame(rvu_rows, schema=RVU), RVU, name="rvu"),
        gpci=conform(pl.DataFrame(gpci_rows or [gpci_row()], schema=GPCI), GPCI, name="gpci"),
        qp_npis=pl.DataFrame([{"year": 2026, "npi": npi} for npi in qp_npis], schema=QP_NPIS),
    )


# CMS's published 2026 national examples (CF 33.4009, GPCI 1.0).
CMS_2026 = [
    rvu_row("99214", 1.92, 2.00, 0.47, 0.14),
    rvu_row("99213", 1.30, 1.46, 0.38, 0.09),
]
