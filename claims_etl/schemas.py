"""Declared frame schemas at every stage boundary, and `conform` to hold frames to them.

Money is integer cents (`*_cents`), RVUs/GPCIs/conversion factors integers scaled by 10^4 (`*_e4`),
adjustment factors integers scaled by 10^5 (`*_e5`): exact arithmetic, no binary floats.
"""

from __future__ import annotations

import polars as pl

Schema = dict[str, pl.DataType]

# extract -> validate
CLAIMS: Schema = {
    "claim_id": pl.Int64(),
    "batch_id": pl.String(),
    "patient_dob": pl.Date(),
    "billing_npi": pl.String(),
    "rendering_npi": pl.String(),
    "mac": pl.String(),
    "locality": pl.String(),
    "place_of_service": pl.String(),
    "diagnosis_1": pl.String(),
    "diagnosis_2": pl.String(),
    "diagnosis_3": pl.String(),
    "diagnosis_4": pl.String(),
    "total_charge_cents": pl.Int64(),
    "received_date": pl.Date(),
    "recovered": pl.Boolean(),
    # V16: the source held a value no reader or warehouse can (read as null, or batch_id truncated):
    # staging.etl_claims; null (a frame built by hand) is false.
    "unrepresentable": pl.Boolean(),
}
LINES: Schema = {
    "claim_id": pl.Int64(),
    "line_number": pl.Int32(),
    "service_date": pl.Date(),
    "procedure_code": pl.String(),
    "modifier_1": pl.String(),
    "modifier_2": pl.String(),
    "modifier_3": pl.String(),
    "modifier_4": pl.String(),
    "units": pl.Int64(),
    "charge_cents": pl.Int64(),
    "place_of_service": pl.String(),
    "unrepresentable": pl.Boolean(),  # V16, as on CLAIMS: staging.etl_claim_lines
}

# reference -> validate, price
RVU: Schema = {
    "release": pl.String(),
    "year": pl.Int32(),
    "hcpcs": pl.String(),
    "modifier": pl.String(),
    "status_code": pl.String(),
    "work_rvu_e4": pl.Int64(),
    "nonfac_pe_rvu_e4": pl.Int64(),
    "facility_pe_rvu_e4": pl.Int64(),
    "mp_rvu_e4": pl.Int64(),
    "conv_factor_e4": pl.Int64(),  # non-QP (the PPRRVU file's CONV FACTOR)
    "qp_conv_factor_e4": pl.Int64(),  # qualifying APM participants; null where the release has none
    "pctc_ind": pl.String(),
    "mult_proc": pl.String(),
    "bilat_surg": pl.String(),
    "co_surg": pl.String(),
    # The imaging cap (docs/spec.md §4): the PE and MP RVUs CMS uses for the OPPS payment amount, 0 on
    # rows no cap applies to (and null in frames built by hand without them: no cap either).
    "opps_nonfac_pe_rvu_e4": pl.Int64(),
    "opps_facility_pe_rvu_e4": pl.Int64(),
    "opps_mp_rvu_e4": pl.Int64(),
}
GPCI: Schema = {
    "release": pl.String(),
    "year": pl.Int32(),
    "mac": pl.String(),
    "locality": pl.String(),
    "pw_gpci_e4": pl.Int64(),
    "pe_gpci_e4": pl.Int64(),
    "mp_gpci_e4": pl.Int64(),
}
# A release is in force from its effective date to the next release of its year (docs/spec.md §7).
RELEASES: Schema = {
    "release": pl.String(),
    "year": pl.Int32(),
    "effective_from": pl.Date(),
}
QP_NPIS: Schema = {
    "year": pl.Int32(),
    "npi": pl.String(),
}

# validate -> load
REJECTED: Schema = {
    "claim_id": pl.Int64(),
    "batch_id": pl.String(),
    "recovered": pl.Boolean(),
    "rule_ids": pl.String(),
}
# validate -> load: a warn-severity rule an accepted claim broke (rules file), a row per claim and rule
WARNINGS: Schema = {
    "claim_id": pl.Int64(),
    "rule_id": pl.String(),
}

# price -> load
PRICED_LINES: Schema = {
    "claim_id": pl.Int64(),
    "line_number": pl.Int32(),
    "procedure_code": pl.String(),
    "modifier_1": pl.String(),
    "units": pl.Int64(),
    "charge_cents": pl.Int64(),
    "facility": pl.Int8(),
    "fee_schedule_cents": pl.Int64(),
    "adjustment_factor_e5": pl.Int64(),
    "allowed_cents": pl.Int64(),
    "pricing_note": pl.String(),
    "rvu_release": pl.String(),
    "cf_kind": pl.String(),  # "qp" or "non_qp"
}
PRICED_CLAIMS: Schema = {
    "claim_id": pl.Int64(),
    "batch_id": pl.String(),
    "recovered": pl.Boolean(),
    "billing_npi": pl.String(),
    "mac": pl.String(),
    "locality": pl.String(),
    "place_of_service": pl.String(),
    "line_count": pl.Int32(),
    "total_charge_cents": pl.Int64(),
    "total_allowed_cents": pl.Int64(),
}


class SchemaError(ValueError):
    """A frame at a stage boundary lacks a declared column or holds one that cannot be cast."""


def conform(frame: pl.DataFrame, schema: Schema, *, name: str) -> pl.DataFrame:
    """`frame` with exactly the declared columns, in order, cast (strictly) to the declared types."""
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing columns {missing}")
    try:
        return frame.select(pl.col(column).cast(dtype, strict=True) for column, dtype in schema.items())
    except pl.exceptions.PolarsError as error:
        raise SchemaError(f"{name}: {error}") from error
