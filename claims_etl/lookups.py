"""What ties a service line to its fee schedule rows (CONTRACT 4.1-4.2), shared by validate and price."""

from __future__ import annotations

import polars as pl

from claims_etl.reference import ReferenceFrames

MODIFIERS = ("modifier_1", "modifier_2", "modifier_3", "modifier_4")
FACILITY_POS = (
    "02",
    "19",
    "21",
    "22",
    "23",
    "24",
    "26",
    "31",
    "34",
    "41",
    "42",
    "51",
    "52",
    "53",
    "56",
    "61",
)
PRICING_MODIFIERS = ("26", "TC", "53")


def present(column: str) -> pl.Expr:
    """An optional text value is present when it is not null and not blank."""
    return is_present(pl.col(column))


def is_present(value: pl.Expr) -> pl.Expr:
    return value.is_not_null() & (value.str.strip_chars() != "")


def has_modifier(*codes: str) -> pl.Expr:
    """True where any of the line's four modifiers is one of `codes`."""
    return pl.any_horizontal(pl.col(m).is_in(codes).fill_null(False) for m in MODIFIERS)


def with_line_keys(lines: pl.DataFrame, claims: pl.DataFrame) -> pl.DataFrame:
    """Lines with their claim's fields and the lookup keys: year, pricing modifier, POS, facility."""
    claim_fields = claims.select(
        "claim_id",
        "mac",
        "locality",
        pl.col("place_of_service").alias("claim_pos"),
        "patient_dob",
        "received_date",
    )
    pricing_modifier = pl.coalesce(
        *(pl.when(pl.col(m).is_in(PRICING_MODIFIERS)).then(pl.col(m)) for m in MODIFIERS), pl.lit("")
    )
    pos = pl.when(present("place_of_service")).then(pl.col("place_of_service")).otherwise(pl.col("claim_pos"))
    return (
        lines.join(claim_fields, on="claim_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("service_date").dt.year().alias("year"),
            pricing_modifier.alias("pricing_modifier"),
            pos.alias("pos"),
        )
        .with_columns(pl.col("pos").is_in(FACILITY_POS).fill_null(False).alias("is_facility"))
    )


def join_fee_schedule(keyed_lines: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Keyed lines with their RVU row (by year, HCPCS, pricing modifier) and GPCI row (year, MAC,
    locality); `rvu_found`/`gpci_found` say whether each row exists."""
    rvu = reference.rvu.with_columns(pl.lit(True).alias("rvu_found"))
    gpci = reference.gpci.with_columns(pl.lit(True).alias("gpci_found"))
    return (
        keyed_lines.join(
            rvu,
            left_on=["year", "procedure_code", "pricing_modifier"],
            right_on=["year", "hcpcs", "modifier"],
            how="left",
            maintain_order="left",
        )
        .join(gpci, on=["year", "mac", "locality"], how="left", maintain_order="left")
        .with_columns(pl.col("rvu_found", "gpci_found").fill_null(False))
    )


def key_lines(lines: pl.DataFrame, claims: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Lines with their claim's fields, lookup keys and fee schedule rows, plus `global_pctc_ind`: the
    PCTC IND of the code's row without a modifier (V06 asks it whether 26/TC may split the code).
    Validate builds this once; price reuses the accepted part of it."""
    global_pctc = reference.rvu.filter(pl.col("modifier") == "").select(
        "year", pl.col("hcpcs").alias("procedure_code"), pl.col("pctc_ind").alias("global_pctc_ind")
    )
    return fee_schedule_lines(lines, claims, reference).join(
        global_pctc, on=["year", "procedure_code"], how="left", maintain_order="left"
    )


def fee_schedule_lines(lines: pl.DataFrame, claims: pl.DataFrame, reference: ReferenceFrames) -> pl.DataFrame:
    """Lines with their claim's fields, lookup keys and fee schedule rows: what pricing reads."""
    return join_fee_schedule(with_line_keys(lines, claims), reference)
