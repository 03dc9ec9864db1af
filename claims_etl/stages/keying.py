"""What ties a service line to its claim and its fee schedule rows (docs/spec.md §4.1-4.2), shared by
validate and price.

Keying runs on every line of every range, so it stays off text where it can: each join carries only
its keys and the numbers and flags the rules and pricing read, never a wide frame of strings, and the
text columns the rules ask about (modifiers, places of service) are classified once per distinct
value (`by_value`), not once per line.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.stages.columns import (
    FACILITY_POS,
    FLAG_SPAN,
    KEY,
    MODIFIERS,
    PAYABLE_STATUS,
    PRICING_MODIFIER_BITS,
    PRICING_MODIFIER_MASK,
    by_value,
    claim_id_sorted_if,
    is_present,
    modifier_key_of,
)

_RELEASE = pl.Int32


def _with_modifier_keys(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per modifier column its `modifier_n_key` (`modifier_key_of`), then `modifier_flags` (every
    modifier's bits together) and `pricing_modifier_bit` (the first of the line's modifiers that is
    26, TC or 53, docs/spec.md §4.2; 0 for none): one lookup per modifier column for all of it."""
    keys = [pl.col(f"{column}_key") for column in MODIFIERS]
    flag_mask = FLAG_SPAN - 1
    pricing = [key & PRICING_MODIFIER_MASK for key in keys]
    return lines.with_columns(
        by_value(column, modifier_key_of, null=pl.lit(0, KEY)).alias(f"{column}_key") for column in MODIFIERS
    ).with_columns(
        (functools.reduce(operator.or_, keys) & flag_mask).alias("modifier_flags"),
        pl.coalesce(*(pl.when(bit != 0).then(bit) for bit in pricing), pl.lit(0, KEY)).alias("pricing_modifier_bit"),
    )


def _localities(reference: ReferenceFrames) -> pl.LazyFrame:
    """A number for each MAC and locality of the GPCI table: claims carry it to their lines instead of
    the two strings."""
    return (
        reference.gpci.lazy().select("mac", "locality").unique().sort("mac", "locality").with_row_index("locality_id")
    )


def _claim_keys(
    claims: pl.DataFrame, localities: pl.LazyFrame, *, with_qp_npi: bool, facility_pos: Sequence[str] = FACILITY_POS
) -> pl.LazyFrame:
    """Per claim, what its lines need of it: dates for V09/V10, whether its place of service is a
    facility (docs/spec.md §4.1), its locality's number (`_localities`; null if the GPCI has none),
    and, when a QP list is loaded, the NPI the list is asked about (rendering, else billing; §7)."""
    qp_npi = [pl.coalesce("rendering_npi", "billing_npi").alias("qp_npi")] if with_qp_npi else []
    return (
        claims.lazy()
        .select(
            claim_id_sorted_if(claims),
            "patient_dob",
            "received_date",
            pl.col("place_of_service").is_in(facility_pos).fill_null(False).alias("claim_facility"),
            "mac",
            "locality",
            *qp_npi,
        )
        .join(localities, on=["mac", "locality"], how="left", maintain_order="left", validate="m:1")
        .drop("mac", "locality")
    )


def _release_numbers(reference: ReferenceFrames) -> pl.DataFrame:
    """A number for each release (`release_id`), in (year, effective date) order."""
    return (
        reference.releases.sort("year", "effective_from")
        .with_row_index("release_id")
        .with_columns(pl.col("release_id").cast(_RELEASE))
    )


def _release_of_dates(lines: pl.DataFrame, releases: pl.DataFrame) -> pl.LazyFrame:
    """The release in force on each distinct service date: the latest `effective_from` on or before
    it within its year (null before the year's first release, or in a year without one). Once per
    distinct date: lines carry the date to a small hash lookup instead of an as-of join each."""
    dates = (
        lines.lazy()
        .select(pl.col("service_date").unique().drop_nulls().sort())
        .with_columns(pl.col("service_date").dt.year().cast(pl.Int32).alias("year"))
    )
    # An Enum of the releases' own labels: lines carry its small integers, not strings.
    label = pl.col("release").cast(pl.Enum(releases.get_column("release").unique().sort())).alias("rvu_release")
    in_force = releases.lazy().select("year", "effective_from", "release_id", label).sort("effective_from")
    return dates.join_asof(
        in_force,
        left_on="service_date",
        right_on="effective_from",
        by="year",
        strategy="backward",
        check_sortedness=False,  # both sides are sorted just above; Polars cannot check it within groups
    ).select("service_date", "release_id", "rvu_release")


def _by_release(frame: pl.DataFrame, releases: pl.DataFrame) -> pl.LazyFrame:
    """A reference frame with its release's number instead of its label."""
    return frame.lazy().join(releases.lazy().select("release", "release_id"), on="release", how="inner")


def _gpci_rows(reference: ReferenceFrames, releases: pl.DataFrame, localities: pl.LazyFrame) -> pl.LazyFrame:
    """GPCI rows by release and locality number (`_localities`)."""
    return (
        _by_release(reference.gpci, releases)
        .join(localities, on=["mac", "locality"], how="left")
        .select("release_id", "locality_id", "pw_gpci_e4", "pe_gpci_e4", "mp_gpci_e4", pl.lit(True).alias("gpci_found"))
    )


# A code's `code_id` carries in its low bits whether the release has a row for it with modifier 26
# and with TC: a line's join gathers one number where two flags cost two gathers of bits.
_PC_ROW_BIT, _TC_ROW_BIT = 1, 2
_CODE_STEP = 4


def _procedure_codes(reference: ReferenceFrames, releases: pl.DataFrame) -> pl.DataFrame:
    """One row per release and HCPCS with a number for the code (`code_id`), whose low bits say whether
    the release has a row for it with modifier 26 (`pc_row`) and with TC (`tc_row`): V06 accepts a 26
    or TC modifier only where CMS publishes that row (docs/spec.md §5)."""
    modifier = pl.col("modifier")
    return (
        _by_release(reference.rvu, releases)
        .group_by("release_id", "hcpcs")
        .agg(
            (
                pl.when((modifier == "26").any()).then(_PC_ROW_BIT).otherwise(0)
                | pl.when((modifier == "TC").any()).then(_TC_ROW_BIT).otherwise(0)
            )
            .cast(KEY)
            .alias("row_bits")
        )
        .sort("release_id", "hcpcs")
        .with_row_index("code_number")
        .select(
            "release_id", "hcpcs", (pl.col("code_number").cast(KEY) * _CODE_STEP + pl.col("row_bits")).alias("code_id")
        )
        .collect()
    )


def _code_rows() -> list[pl.Expr]:
    """`pc_row` and `tc_row` of a keyed line, from its code's `code_id` (False for an unknown code)."""
    code = pl.col("code_id")
    return [
        ((code & _PC_ROW_BIT) != 0).fill_null(False).alias("pc_row"),
        ((code & _TC_ROW_BIT) != 0).fill_null(False).alias("tc_row"),
    ]


def _qp_lines(reference: ReferenceFrames) -> pl.LazyFrame:
    """(service year, NPI) pairs priced with the QP conversion factor."""
    return reference.qp_npis.lazy().select(
        pl.col("year").cast(pl.Int32), pl.col("npi").alias("qp_npi"), pl.lit(True).alias("qp_listed")
    )


# The notes §4a-4c give a line (docs/spec.md §4), besides "" and STATUS_<code>, by MULT PROC kind. All
# notes a priced line can carry are categories of one Enum, so price writes notes as small integers;
# `NOTE_NAMES` orders them so that an MPPR note's number plus OPPS_CAP's is its "+OPPS_CAP" note's.
DIAGNOSTIC_NOTES = {4: "MPPR_DI", 6: "MPPR_DC", 7: "MPPR_DO"}
NOT_APPLIED_NOTES = {3: "NO_MPPR_3", 5: "NO_MPPR_5"}
NOTE_NAMES = (
    "",
    *DIAGNOSTIC_NOTES.values(),
    "OPPS_CAP",
    *(f"{name}+OPPS_CAP" for name in DIAGNOSTIC_NOTES.values()),
    *NOT_APPLIED_NOTES.values(),
)
# MULT PROC values the price stage reads (docs/spec.md §4.4, 4a, 4c); any other value is 0, no rule.
MULTIPLE_PROCEDURE_KINDS = ("2", "3", "4", "5", "6", "7")
DIAGNOSTIC_MPPR_KINDS = (4, 6, 7)
_RVUS = ("work_rvu_e4", "nonfac_pe_rvu_e4", "facility_pe_rvu_e4", "mp_rvu_e4")
_OPPS_RVUS = ("opps_nonfac_pe_rvu_e4", "opps_facility_pe_rvu_e4", "opps_mp_rvu_e4")


def _multiple_procedure_kind() -> pl.Expr:
    return pl.col("mult_proc").replace_strict(
        MULTIPLE_PROCEDURE_KINDS, [int(k) for k in MULTIPLE_PROCEDURE_KINDS], default=0, return_dtype=pl.Int8
    )


_CAPPED = pl.any_horizontal(pl.col(_OPPS_RVUS).fill_null(0) != 0)
_MEDICARE_REDUCTIONS = _multiple_procedure_kind().is_in([3, 4, 5, 6, 7]) | _CAPPED
_PRICING_BIT = pl.col("modifier").replace_strict(PRICING_MODIFIER_BITS, default=None, return_dtype=KEY)


def _numbered_rvu(reference: ReferenceFrames) -> pl.DataFrame:
    """The RVU rows with their position (`reduction_row`): how a keyed line names its row to
    `reduction_rows` in one small integer."""
    return reference.rvu.with_row_index("reduction_row")


def reduction_rows(reference: ReferenceFrames) -> pl.DataFrame:
    """`_reduction_rows`, built once per ReferenceFrames."""
    return reference.derived("keying.reduction_rows", lambda: _reduction_rows(reference))


def _reduction_rows(reference: ReferenceFrames) -> pl.DataFrame:
    """What §4a-4c read of the RVU rows they apply to, by `reduction_row` (a keyed line's, the row's
    position in `reference.rvu`): `multiple_procedure_kind`, the OPPS RVUs (`opps_*`, null where not
    capped) and the RVUs of the code's 26 row (`pc_*`, for the PC/TC split, docs/spec.md §4a). Kept
    apart from the keyed lines, which would otherwise carry eight mostly-null columns through validate."""
    rows = _by_release(_numbered_rvu(reference), _release_numbers(reference)).with_columns(
        _PRICING_BIT.alias("pricing_modifier_bit")
    )
    professional = rows.filter(pl.col("modifier") == "26").select(
        "release_id", "hcpcs", *(pl.col(rvu).alias(f"pc_{rvu}") for rvu in _RVUS)
    )
    return (
        rows.filter(pl.col("pricing_modifier_bit").is_not_null() & _MEDICARE_REDUCTIONS)
        .join(professional, on=["release_id", "hcpcs"], how="left")
        .select(
            "reduction_row",
            pl.col("hcpcs").alias("reduction_hcpcs"),  # price checks it against the line's code
            _multiple_procedure_kind().alias("multiple_procedure_kind"),
            *(pl.when(_CAPPED).then(pl.col(rvu).fill_null(0)).alias(rvu) for rvu in _OPPS_RVUS),
            *(f"pc_{rvu}" for rvu in _RVUS),
        )
        .collect()
    )


def _fee_schedule_rows(reference: ReferenceFrames, releases: pl.DataFrame, codes: pl.DataFrame) -> pl.LazyFrame:
    """RVU rows by code number and pricing modifier bit, with the numbers and flags pricing reads.
    Rows with any other modifier are never a line's RVU row (docs/spec.md §4.2), so they are left out.
    What §4a-4c read besides is in `reduction_rows`, by `reduction_row` (null where they read nothing)."""
    notes = pl.when(_PAYABLE).then(pl.lit("")).otherwise(pl.lit("STATUS_") + pl.col("status_code"))
    rows = _numbered_rvu(reference).with_columns(
        _PRICING_BIT.alias("pricing_modifier_bit"), notes.alias("pricing_note")
    )
    # An Enum of this frame's own notes: lines gather its small integers, not strings.
    note_type = pl.Enum(sorted({*rows.get_column("pricing_note").drop_nulls().unique(), *NOTE_NAMES}))
    return (
        _by_release(rows, releases)
        .filter(pl.col("pricing_modifier_bit").is_not_null())
        .join(codes.lazy(), on=["release_id", "hcpcs"], how="left")
        .select(
            "code_id",
            "pricing_modifier_bit",
            *_RVUS,
            "conv_factor_e4",
            "qp_conv_factor_e4",
            pl.col("pricing_note").cast(note_type),
            # A line of such a row may be lowered or noted by §4a-4c: price works those lines apart.
            pl.when(_MEDICARE_REDUCTIONS).then(pl.col("reduction_row")).alias("reduction_row"),
            _rvu_flags().alias("rvu_flags"),
        )
    )


# A fee schedule row's yes/no columns as bits of one small number (`rvu_flags`): a line's join
# gathers one byte where four flags cost four gathers of bits; `_rvu_flag_columns` unpacks them.
_PAYABLE = pl.col("status_code").is_in(PAYABLE_STATUS).fill_null(False)
_RVU_FLAGS = {"payable": 1, "multiple_procedure": 2, "bilateral_surgery": 4, "co_surgery": 8}


def _rvu_flags() -> pl.Expr:
    """A fee schedule row's `rvu_flags`: its payable status and MULT PROC 2, BILAT SURG 1, CO SURG 1/2."""
    flags = {
        "payable": _PAYABLE,
        "multiple_procedure": (pl.col("mult_proc") == "2").fill_null(False),
        "bilateral_surgery": (pl.col("bilat_surg") == "1").fill_null(False),
        "co_surgery": pl.col("co_surg").is_in(("1", "2")).fill_null(False),
    }
    bits = (pl.when(flags[name]).then(bit).otherwise(0) for name, bit in _RVU_FLAGS.items())
    return functools.reduce(operator.or_, bits).cast(pl.UInt8)


def _rvu_flag_columns() -> list[pl.Expr]:
    """A keyed line's fee schedule flags from `rvu_flags` (null where it has no row) and `rvu_found`."""
    flags = pl.col("rvu_flags")
    unpacked = [((flags & bit) != 0).alias(name) for name, bit in _RVU_FLAGS.items()]
    return [*unpacked, flags.is_not_null().alias("rvu_found")]


def _look_up(keyed: pl.LazyFrame, table: pl.LazyFrame, *, on: list[str]) -> pl.LazyFrame:
    """One reference lookup for every line: a left join on keys that are unique in `table` (checked),
    lines kept in their order; a line without a match gets nulls."""
    return keyed.join(table, on=on, how="left", maintain_order="left", validate="m:1")


def key_lines(
    lines: pl.DataFrame,
    claims: pl.DataFrame,
    reference: ReferenceFrames,
    *,
    facility_pos: Sequence[str] = FACILITY_POS,
) -> pl.DataFrame:
    """Lines (every column kept) with what validate and price read of their claim and fee schedule rows:
    `year`, `release_id` and `rvu_release` (the release in force on the service date, docs/spec.md §7),
    `modifier_flags`,
    `is_facility` (§4.1), the RVU row's numbers and flags and `rvu_found` (4.2), the GPCI row's numbers
    and `gpci_found`, `pc_row` and `tc_row` (V06), `qp_listed` (the claim's NPI is on the year's QP list),
    and the claim's `patient_dob` and `received_date`. Validate builds this once; price reuses the
    accepted part of it. `facility_pos`: the facility places of service (a rules file may set them)."""
    releases = _release_numbers(reference)
    codes = reference.derived("keying.codes", lambda: _procedure_codes(reference, releases))
    fee_schedule_rows = reference.derived(
        "keying.fee_schedule_rows", lambda: _fee_schedule_rows(reference, releases, codes).collect()
    )
    localities = _localities(reference)
    with_qp = not reference.qp_npis.is_empty()
    line_pos_facility = by_value(
        "place_of_service",
        lambda pos: pl.when(is_present(pos)).then(pos.is_in(facility_pos)),
        null=pl.lit(None, pl.Boolean),
    )
    keyed = (
        _with_modifier_keys(lines.lazy().with_columns(claim_id_sorted_if(lines)))
        .with_columns(pl.col("service_date").dt.year().cast(pl.Int32).alias("year"))
        .pipe(_look_up, _release_of_dates(lines, releases), on=["service_date"])
        .join(
            _claim_keys(claims, localities, with_qp_npi=with_qp, facility_pos=facility_pos),
            on="claim_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(line_pos_facility.fill_null(pl.col("claim_facility")).fill_null(False).alias("is_facility"))
        .pipe(
            _look_up,
            codes.lazy().select("release_id", pl.col("hcpcs").alias("procedure_code"), "code_id"),
            on=["release_id", "procedure_code"],
        )
        .pipe(_look_up, fee_schedule_rows.lazy(), on=["code_id", "pricing_modifier_bit"])
        .pipe(_look_up, _gpci_rows(reference, releases, localities), on=["release_id", "locality_id"])
    )
    keyed = (
        keyed.pipe(_look_up, _qp_lines(reference), on=["year", "qp_npi"]).drop("qp_npi")
        if with_qp
        else keyed.with_columns(pl.lit(False).alias("qp_listed"))
    )
    return (
        keyed.with_columns(*_code_rows(), *_rvu_flag_columns())
        .with_columns(pl.col("gpci_found", "qp_listed").fill_null(False))
        .drop("claim_facility", "locality_id", "code_id", "rvu_flags")
        .collect()
    )
