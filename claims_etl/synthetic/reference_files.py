"""Synthetic fee schedule files in CMS's published layouts (docs/spec.md §3): an RVU file and a GPCI
file per year with synthetic HCPCS-style codes (no CPT descriptors), valid NPIs, and the code pool the
synthetic claims draw from. Deterministic for a given seed; generated column-wise (numpy)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl

YEARS = {2025: "32.3465", 2026: "33.4009"}  # CMS conversion factors (non-APM) per year
LOCALITIES = [  # (MAC, state, locality number)
    ("01112", "CA", "05"),
    ("01182", "CA", "18"),
    ("02102", "AK", "01"),
    ("03102", "AZ", "00"),
    ("04412", "TX", "31"),
    ("05102", "IA", "00"),
    ("06112", "IL", "16"),
    ("10112", "FL", "04"),
    ("12402", "NJ", "01"),
    ("13282", "NY", "01"),
    ("15202", "OH", "00"),
    ("09102", "FL", "03"),
]
NON_PAYABLE = ("B", "I", "N", "X")


def _npi_check_digit(first_nine: np.ndarray) -> np.ndarray:
    """Luhn check digit of "80840" + nine digits (n x 9 int array)."""
    doubled = first_nine[:, 0::2] * 2
    doubled = doubled - 9 * (doubled > 9)
    total = doubled.sum(axis=1) + first_nine[:, 1::2].sum(axis=1) + 24
    return np.asarray((10 - total % 10) % 10)


def valid_npis(rng: np.random.Generator, n: int) -> np.ndarray:
    first = np.column_stack([rng.integers(1, 3, n), rng.integers(0, 10, (n, 8))])
    digits = np.column_stack([first, _npi_check_digit(first)])
    return np.array(["".join(map(str, row)) for row in digits])  # n is a small pool, not claims


# ---------------------------------------------------------------- reference files (CMS layouts)

# CMS's five stacked PPRRVU header rows as published for 2025 (../shared/CMS_LAYOUTS.md), trailing
# spaces included; 2026 inserts PRIC IND after TEAM SURG (`_rvu_header`).
_RVU_HEADER_2025 = (
    ",, , ,,,,,,,,,,,,,,,,,,,,,,,,,NON-FACILITY,FACILITY,",
    ",,,,NOT USED,,,,,,,,,,,,,,,,,,,,,PHYSICIAN,,DIAGNOSTIC,PE USED,PE USED,MP USED",
    ",,,,FOR,,,NON-FAC,,FACILITY ,,,,,,,,,,,,,,,,SUPERVISION OF,,IMAGING,FOR OPPS,FOR OPPS,FOR OPPS",
    ",,,STATUS,MEDICARE ,WORK,NON-FAC,NA,FACILITY,NA,MP,NON-FACILITY,FACILITY,PCTC,GLOB,PRE,INTRA,POST,MULT,BILAT,"
    "ASST,CO-,TEAM,ENDO,CONV,DIAGNOSTIC,CALCULATION,FAMILY,PAYMENT,PAYMENT,PAYMENT",
    "HCPCS,MOD,DESCRIPTION,CODE,PAYMENT,RVU,PE RVU,INDICATOR,PE RVU,INDICATOR,RVU,TOTAL,TOTAL,IND,DAYS,OP,OP,OP,PROC,"
    "SURG,SURG,SURG,SURG,BASE,FACTOR,PROCEDURES,FLAG,INDICATOR,AMOUNT,AMOUNT,AMOUNT",
)
_PRIC_IND_AT = 23  # 0-based column of PRIC IND in the 2026 layout, right after TEAM SURG
_RELEASED = {"January": (12, -1), "April": (3, 0), "July": (6, 0), "October": (9, 0)}  # month, year offset
# PPRRVU rows per code: the global row, PC (26) and TC rows, and the reduced-service (53) row.
_VARIANTS = pl.DataFrame(
    {
        "variant": [0, 1, 2, 3],
        "modifier": ["", "26", "TC", "53"],
        "work_share": [1.0, 1.0, 0.0, 0.5],
        "pe_share": [1.0, 0.25, 0.75, 0.5],
    }
)
DIAGNOSTIC_SEED_OFFSET = 11  # the RNG of the diagnostic reassignments, apart from _code_pool's draws


def _code_pool(rng: np.random.Generator, n: int) -> pl.DataFrame:
    letters = np.array(list("ABCDEGHJKLMPQRSTUV"))
    codes = np.unique(
        np.char.add(rng.choice(letters, n * 2), np.char.zfill(rng.integers(0, 10_000, n * 2).astype(str), 4))
    )
    codes = rng.permutation(codes)[:n]
    status = rng.choice(["A", "R", "T", *NON_PAYABLE], n, p=[0.86, 0.04, 0.04, 0.015, 0.015, 0.015, 0.015])
    return pl.DataFrame(
        {
            "hcpcs": codes,
            "status_code": status,
            "work": rng.integers(5, 2000, n),  # hundredths of an RVU
            "pe_nonfac": rng.integers(5, 3000, n),
            "pe_fac": rng.integers(3, 1200, n),
            "mp": rng.integers(1, 300, n),
            "pctc_ind": rng.choice(["0", "1"], n, p=[0.8, 0.2]),
            "mult_proc": rng.choice(["0", "2"], n, p=[0.6, 0.4]),
            "bilat_surg": rng.choice(["0", "1"], n, p=[0.8, 0.2]),
            "asst_surg": rng.choice(["0", "1", "2"], n, p=[0.6, 0.2, 0.2]),
            "co_surg": rng.choice(["0", "1", "2"], n, p=[0.7, 0.15, 0.15]),
            "has_53": rng.random(n) < 0.05,
        }
    )


def _with_diagnostic_codes(pool: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Diagnostic services for the MPPR and OPPS cap (issue 28), drawn from their own RNG so that the
    pool's other attributes stay those of its seed: of the codes with a PC/TC split, about 15% become
    imaging (MULT PROC 4), 5% cardiovascular (6) and 5% ophthalmology (7); about one code in 30 (10 of
    300) becomes a lab interpretation code (PCTC IND 6: a global and a 26 row, payable). Imaging codes
    carry per-code shares (60-95%) of their PE and MP RVUs that CMS's OPPS amount uses."""
    n = pool.height
    roll = pl.Series(rng.random(n))
    split = pl.col("pctc_ind") == "1"
    others = np.flatnonzero(pool.get_column("pctc_ind").to_numpy() == "0")
    labs = rng.choice(others, size=min(others.size, max(1, n // 30)), replace=False)
    is_lab = pl.Series(np.isin(np.arange(n), labs))
    return pool.with_columns(
        pl.when(split & (roll < 0.15))
        .then(pl.lit("4"))
        .when(split & (roll < 0.20))
        .then(pl.lit("6"))
        .when(split & (roll < 0.25))
        .then(pl.lit("7"))
        .when(is_lab)
        .then(pl.lit("0"))
        .otherwise("mult_proc")
        .alias("mult_proc"),
        pl.when(is_lab).then(pl.lit("6")).otherwise("pctc_ind").alias("pctc_ind"),
        pl.when(is_lab).then(pl.lit("A")).otherwise("status_code").alias("status_code"),
        (pl.col("has_53") & ~is_lab).alias("has_53"),
        pl.Series("opps_pe_share", rng.uniform(0.60, 0.95, n)),
        pl.Series("opps_mp_share", rng.uniform(0.60, 0.95, n)),
    )


def _hundredths(column: str) -> pl.Expr:
    """Integer hundredths as CMS prints an RVU: 2 decimals."""
    value = pl.col(column)
    return ((value // 100).cast(pl.String) + "." + (value % 100).cast(pl.String).str.zfill(2)).alias(column)


def _rvu_values(pool: pl.DataFrame, year: int) -> pl.DataFrame:
    """One row per PPRRVU row in hundredths of an RVU: a global row per code, 26/TC rows where PCTC IND is
    1 (26 only where it is 6, lab interpretation), some 53; OPPS PE/MP on imaging codes' global and TC rows."""
    drift = 1.0 if year == max(YEARS) else 0.97
    pctc, variant = pl.col("pctc_ind"), pl.col("variant")
    rows = (
        pool.with_row_index("code")
        .join(_VARIANTS, how="cross")
        .filter(
            (variant == 0)
            | ((variant == 1) & pctc.is_in(["1", "6"]))
            | ((variant == 2) & (pctc == "1"))
            | ((variant == 3) & pl.col("has_53"))
        )
        .sort("code", "variant")
    )
    mp_share = pl.when(pl.col("work_share") == 0).then(0.2).otherwise("work_share")
    capped = (pl.col("mult_proc") == "4") & variant.is_in([0, 2])
    return rows.with_columns(
        (pl.col("work") * drift * pl.col("work_share")).round().cast(pl.Int64).alias("work"),
        (pl.col("pe_nonfac") * drift * pl.col("pe_share")).round().cast(pl.Int64).alias("pe_nonfac"),
        (pl.col("pe_fac") * drift * pl.col("pe_share")).round().cast(pl.Int64).alias("pe_fac"),
        (pl.col("mp") * drift * mp_share).round().cast(pl.Int64).alias("mp"),
    ).with_columns(
        *(
            pl.when(capped).then((pl.col(pe) * pl.col(share)).round().cast(pl.Int64)).otherwise(0).alias(f"opps_{pe}")
            for pe, share in (("pe_nonfac", "opps_pe_share"), ("pe_fac", "opps_pe_share"), ("mp", "opps_mp_share"))
        ),
    )


def _rvu_rows(pool: pl.DataFrame, year: int) -> pl.DataFrame:
    """PPRRVU data rows in CMS's column order for `year` (cells as text, null for an empty cell)."""
    values = _rvu_values(pool, year).with_columns(
        (pl.col("work") + pl.col("pe_nonfac") + pl.col("mp")).alias("nonfac_total"),
        (pl.col("work") + pl.col("pe_fac") + pl.col("mp")).alias("facility_total"),
    )
    blank = pl.lit(None, pl.String)
    imaging = pl.col("mult_proc") == "4"
    cells = [
        pl.col("hcpcs"),
        pl.col("modifier").replace("", None),
        blank.alias("description"),  # no descriptions (CPT descriptors are AMA copyright)
        pl.col("status_code"),
        blank.alias("not_used_for_medicare"),
        _hundredths("work"),
        _hundredths("pe_nonfac"),
        blank.alias("nonfac_na_indicator"),
        _hundredths("pe_fac"),
        blank.alias("facility_na_indicator"),
        _hundredths("mp"),
        _hundredths("nonfac_total"),
        _hundredths("facility_total"),
        pl.col("pctc_ind"),
        pl.when(pl.col("mult_proc") == "2").then(pl.lit("090")).otherwise(pl.lit("XXX")).alias("glob_days"),
        pl.lit("0.10").alias("pre_op"),
        pl.lit("0.80").alias("intra_op"),
        pl.lit("0.10").alias("post_op"),
        pl.col("mult_proc"),
        pl.col("bilat_surg"),
        pl.col("asst_surg"),
        pl.col("co_surg"),
        pl.lit("0").alias("team_surg"),
        *([pl.lit("0").alias("pric_ind")] if year >= 2026 else []),
        blank.alias("endo_base"),
        pl.lit(YEARS[year]).alias("conv_factor"),
        blank.alias("physician_supervision"),
        blank.alias("calculation_flag"),
        pl.when(imaging).then(pl.lit("88")).otherwise(pl.lit("99")).alias("diag_imaging_family"),
        _hundredths("opps_pe_nonfac"),
        _hundredths("opps_pe_fac"),
        _hundredths("opps_mp"),
    ]
    return values.select(cells)


def _rvu_header(year: int) -> list[list[str]]:
    rows = [line.split(",") for line in _RVU_HEADER_2025]
    if year >= 2026:
        for row, cell in zip(rows, ["", "", "", "PRIC", "IND"], strict=True):
            row.insert(_PRIC_IND_AT, cell)
    return rows


def _rvu_banner(year: int, month: str, width: int) -> list[list[str]]:
    """CMS's five banner rows, every cell in the third column: title, two notices, one space, RELEASED."""
    released_month, year_offset = _RELEASED[month]
    texts = [
        f"{year} National Physician Fee Schedule Relative Value File {month} Release",
        "Synthetic file generated by claims-etl: codes of its own; no CPT codes or descriptions.",
        "Laid out as CMS publishes the PPRRVU file (docs/spec.md section 3); values are not CMS's.",
        " ",
        f"RELEASED {released_month:02d}/01/{year + year_offset}",
    ]
    return [["", "", text, *([""] * (width - 3))] for text in texts]


def write_rvu_file(path: Path, pool: pl.DataFrame, year: int, *, month: str = "January") -> None:
    """A PPRRVU CSV in CMS's layout for `year` (2026 with PRIC IND), CRLF line ends: the banner of the
    `month` release, the stacked header, the pool's rows, then footnotes and a run of empty rows."""
    header = _rvu_header(year)
    width = len(header[-1])
    footnotes = [["* Synthetic values for testing; not CMS's relative values."], ["** No CPT codes are included."]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerows([*_rvu_banner(year, month, width), *header])
        handle.flush()
        _rvu_rows(pool, year).write_csv(handle, include_header=False, line_terminator="\r\n")
        writer.writerows([*footnotes, *([[""] * width] * 25)])


def write_gpci_file(path: Path, year: int, rng: np.random.Generator) -> None:
    """Addendum E in CMS's layout: from 2026 two work GPCI columns, without and with the 1.0 floor (the
    floored value is max(1.0, raw)); footnotes and a run of empty rows after the table."""
    both = year >= 2026
    work_columns = [f"{year} PW GPCI (without 1.0 Floor)"] * both + [f"{year} PW GPCI (with 1.0 Floor)"]
    header = [
        "Medicare Administrative Contractor (MAC)",
        "State",
        "Locality Number",
        "Locality Name",
        *work_columns,
        f"{year} PE GPCI",
        f"{year} MP GPCI",
    ]
    rows = []
    for mac, state, locality in LOCALITIES:  # a dozen fixed localities; draws in the order they always had
        work = rng.normal(1.02, 0.03)
        raw = [f"{work:.3f}"] * both
        rows.append(
            [
                mac,
                state,
                locality,
                f"Synthetic locality {state}-{locality}",
                *raw,
                f"{max(1.0, work):.3f}",
                f"{rng.uniform(0.85, 1.25):.3f}",
                f"{rng.uniform(0.4, 1.6):.3f}",
            ]
        )
    title = f"ADDENDUM E. FINAL CY {year} GEOGRAPHIC PRACTICE COST INDICES (GPCIs) BY STATE AND MEDICARE LOCALITY"
    empty = [""] * len(header)
    footnotes = [["* Synthetic values for testing."], empty, ["** The 1.0 work GPCI floor: see docs/spec.md."]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(
            [[title], empty, header, *rows, empty, *footnotes, *([empty] * 5)]
        )


def code_pool(seed: int, codes: int = 300) -> pl.DataFrame:
    """The synthetic codes and their fee schedule attributes for a seed (same for every year)."""
    pool = _code_pool(np.random.default_rng(seed), codes)
    return _with_diagnostic_codes(pool, np.random.default_rng(seed + DIAGNOSTIC_SEED_OFFSET))


def write_reference_files(directory: Path, seed: int, pool: pl.DataFrame) -> dict[int, tuple[Path, Path]]:
    """Write one RVU and one GPCI file per year in CMS's layouts (January releases); returns
    {year: (rvu, gpci)}."""
    rng = np.random.default_rng(seed + 2)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for year in YEARS:
        rvu, gpci = directory / f"PPRRVU{year % 100}_synthetic.csv", directory / f"GPCI{year}_synthetic.csv"
        write_rvu_file(rvu, pool, year)
        write_gpci_file(gpci, year, rng)
        files[year] = (rvu, gpci)
    return files


# ---------------------------------------------------------------- claims
