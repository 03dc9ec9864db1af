"""Synthetic data in the contract's shapes: CMS-layout reference files (synthetic HCPCS-style codes,
no CPT descriptors) and pending claims with realistic shape and a share of invalid claims that
together break every rule V01-V15. Deterministic for a given seed; generated column-wise (numpy).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from claims_etl.db import sql
from claims_etl.db.connections import copy_frame
from claims_etl.db.source import source_connection
from claims_etl.reference.cms import RVU_HEADER
from claims_etl.reference.store import ReleaseFiles, load_release
from claims_etl.settings import Settings

YEARS = {2025: "32.3465", 2026: "33.4009"}  # CMS conversion factors (non-APM) per year
QP_CONVERSION_FACTORS = {2026: Decimal("33.5675")}  # qualifying APM participants, from 2026
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
POS_WEIGHTS = {
    "11": 0.55,
    "22": 0.12,
    "21": 0.10,
    "23": 0.06,
    "19": 0.04,
    "02": 0.04,
    "12": 0.04,
    "81": 0.03,
    "31": 0.02,
}
LINE_COUNT_WEIGHTS = [0.30, 0.25, 0.18, 0.12, 0.09, 0.06]  # 1..6 lines
INVALID_RULES = [f"V{n:02d}" for n in range(1, 16)]
RUN_DATE_SAFE_SERVICE_END = date(2026, 6, 30)  # service dates stay in the past for any later run
NON_PAYABLE = ("B", "I", "N", "X")


@dataclass(frozen=True)
class SeedResult:
    first_claim_id: int
    claims: int
    lines: int
    invalid: int


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


def _rvu_rows(pool: pl.DataFrame, year: int) -> list[list[str]]:
    """PPRRVU data rows: a blank-MOD row per code, 26/TC split rows where PCTC IND is 1, some 53."""
    rows: list[list[str]] = []
    conv_factor = YEARS[year]
    drift = 1.0 if year == max(YEARS) else 0.97
    for code in pool.iter_rows(named=True):  # the reference file is small: a few hundred codes
        variants = [("", 1.0, 1.0)]
        if code["pctc_ind"] == "1":
            variants += [("26", 1.0, 0.25), ("TC", 0.0, 0.75)]
        if code["has_53"]:
            variants.append(("53", 0.5, 0.5))
        for modifier, work_share, pe_share in variants:
            work = round(code["work"] * drift * work_share) / 100
            pe_nonfac = round(code["pe_nonfac"] * drift * pe_share) / 100
            pe_fac = round(code["pe_fac"] * drift * pe_share) / 100
            mp = round(code["mp"] * drift * (work_share or 0.2)) / 100
            rows.append(
                [
                    code["hcpcs"],
                    modifier,
                    "",
                    code["status_code"],
                    "",
                    f"{work:.2f}",
                    f"{pe_nonfac:.2f}",
                    "",
                    f"{pe_fac:.2f}",
                    "",
                    f"{mp:.2f}",
                    f"{work + pe_nonfac + mp:.2f}",
                    f"{work + pe_fac + mp:.2f}",
                    code["pctc_ind"],
                    "090" if code["mult_proc"] == "2" else "XXX",
                    "0.10",
                    "0.80",
                    "0.10",
                    code["mult_proc"],
                    code["bilat_surg"],
                    code["asst_surg"],
                    code["co_surg"],
                    "0",
                    "",
                    conv_factor,
                    "",
                    "",
                    "",
                    "0.00",
                    "0.00",
                    "0.00",
                ]
            )
    return rows


def write_rvu_file(path: Path, pool: pl.DataFrame, year: int) -> None:
    upper = [
        "",
        "",
        "",
        "STATUS",
        "MEDICARE",
        "WORK",
        "NON-FAC",
        "NA",
        "FACILITY",
        "NA",
        "MP",
        "NON-FACILITY",
        "FACILITY",
        "PCTC",
        "GLOB",
        "PRE",
        "INTRA",
        "POST",
        "MULT",
        "BILAT",
        "ASST",
        "CO-",
        "TEAM",
        "ENDO",
        "CONV",
        "DIAGNOSTIC",
        "CALCULATION",
        "FAMILY",
        "PAYMENT",
        "PAYMENT",
        "PAYMENT",
    ]
    header = [*RVU_HEADER, "PROCEDURES", "FLAG", "INDICATOR", "AMOUNT", "AMOUNT", "AMOUNT"]
    preamble = [
        [f"{year} National Physician Fee Schedule Relative Value File (synthetic, generated by claims-etl seed)"],
        ["Synthetic HCPCS-style codes; no CPT codes or descriptors."],
        *([[""]] * 6),
        upper,
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([*preamble, header, *_rvu_rows(pool, year)])


def write_gpci_file(path: Path, year: int, rng: np.random.Generator) -> None:
    header = [
        "Medicare Administrative Contractor (MAC)",
        "State",
        "Locality Number",
        "Locality Name",
        f"{year} PW GPCI (with 1.0 Floor)",
        f"{year} PE GPCI",
        f"{year} MP GPCI",
    ]
    rows = [
        [
            mac,
            state,
            locality,
            f"Synthetic locality {state}-{locality}",
            f"{max(1.0, rng.normal(1.02, 0.03)):.3f}",
            f"{rng.uniform(0.85, 1.25):.3f}",
            f"{rng.uniform(0.4, 1.6):.3f}",
        ]
        for mac, state, locality in LOCALITIES
    ]
    preamble = [
        [f"ADDENDUM E. FINAL CY {year} GEOGRAPHIC PRACTICE COST INDICES (GPCIs) BY STATE AND LOCALITY"],
        [""],
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([*preamble, header, *rows, [""], ["* Synthetic values for testing."]])


def code_pool(seed: int, codes: int = 300) -> pl.DataFrame:
    """The synthetic codes and their fee schedule attributes for a seed (same for every year)."""
    return _code_pool(np.random.default_rng(seed), codes)


def write_reference_files(directory: Path, seed: int, pool: pl.DataFrame) -> dict[int, tuple[Path, Path]]:
    """Write one RVU and one GPCI file per year in CMS's layouts; returns {year: (rvu, gpci)}."""
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


def _dates(rng: np.random.Generator, n: int, start: date, end: date) -> np.ndarray:
    days = rng.integers(0, (end - start).days + 1, n)
    return np.datetime64(start, "D") + days


def _with_nulls(values: np.ndarray, null: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).scatter(np.flatnonzero(null), None)


def _claims_frame(rng: np.random.Generator, n: int, first_id: int, seed: int) -> pl.DataFrame:
    npis = valid_npis(rng, 500)
    locality = rng.integers(0, len(LOCALITIES), n)
    pos = rng.choice(list(POS_WEIGHTS), n, p=np.array(list(POS_WEIGHTS.values())) / sum(POS_WEIGHTS.values()))
    diagnoses = np.array(["E11.9", "I10", "J45.909", "M54.5", "Z00.00", "S52521A", "K21.9", "F41.1", "R51", "E785"])

    def optional_diagnosis(share: float) -> pl.Series:
        return _with_nulls(rng.choice(diagnoses, n), rng.random(n) > share)

    rendering = _with_nulls(rng.choice(npis, n), rng.random(n) < 0.3)
    return pl.DataFrame(
        {
            "claim_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "batch_id": np.char.add(f"seed{seed}-", np.char.zfill((np.arange(n) // 10_000).astype(str), 4)),
            "patient_id": np.char.add("SYN", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9)),
            "patient_dob": _dates(rng, n, date(1930, 1, 1), date(2015, 12, 31)),
            "billing_npi": rng.choice(npis, n),
            "rendering_npi": rendering,
            "mac": np.array([LOCALITIES[i][0] for i in range(len(LOCALITIES))])[locality],
            "locality": np.array([LOCALITIES[i][2] for i in range(len(LOCALITIES))])[locality],
            "place_of_service": pos,
            "diagnosis_1": rng.choice(diagnoses, n),
            "diagnosis_2": optional_diagnosis(0.5),
            "diagnosis_3": optional_diagnosis(0.2),
            "diagnosis_4": optional_diagnosis(0.1),
            "service_date": _dates(rng, n, date(2025, 1, 1), RUN_DATE_SAFE_SERVICE_END),
            "line_count": rng.choice(np.arange(1, 7), n, p=LINE_COUNT_WEIGHTS),
        }
    )


def _lines_frame(rng: np.random.Generator, claims: pl.DataFrame, pool: pl.DataFrame) -> pl.DataFrame:
    """Lines with distinct codes per claim (stride 7 through a pool not divisible by 7)."""
    n_codes = pool.height
    lines = claims.select(
        "claim_id",
        "service_date",
        "line_count",
        pl.int_ranges(1, pl.col("line_count") + 1).alias("line_number"),
    ).explode("line_number")
    m = lines.height
    start = rng.integers(0, n_codes, claims.height)
    code_index = (
        np.repeat(start, claims.get_column("line_count").to_numpy()) + lines.get_column("line_number").to_numpy() * 7
    ) % n_codes
    picked = pool[code_index]
    roll = rng.random(m)
    pctc = picked.get_column("pctc_ind").to_numpy() == "1"
    modifier_1 = np.full(m, "", dtype="<U2")
    modifier_1[pctc & (roll < 0.15)] = "26"
    modifier_1[pctc & (roll >= 0.15) & (roll < 0.25)] = "TC"
    modifier_1[(picked.get_column("bilat_surg").to_numpy() == "1") & (roll > 0.85)] = "50"
    modifier_1[(picked.get_column("asst_surg").to_numpy() != "0") & (roll > 0.93)] = "80"
    modifier_1[(picked.get_column("co_surg").to_numpy() != "0") & (roll > 0.97)] = "62"
    modifier_1[picked.get_column("has_53").to_numpy() & (roll < 0.3)] = "53"
    base_fee = (
        picked.get_column("work").to_numpy()
        + picked.get_column("pe_nonfac").to_numpy()
        + picked.get_column("mp").to_numpy()
    )
    charge_cents = (base_fee * 33.4 * rng.uniform(1.2, 3.0, m)).astype(np.int64) + 100
    return pl.DataFrame(
        {
            "claim_id": lines.get_column("claim_id"),
            "line_number": lines.get_column("line_number").cast(pl.Int16),
            "service_date": lines.get_column("service_date"),
            "procedure_code": picked.get_column("hcpcs"),
            "modifier_1": _with_nulls(modifier_1, modifier_1 == ""),
            "modifier_2": pl.Series([None] * m, dtype=pl.String),
            "modifier_3": pl.Series([None] * m, dtype=pl.String),
            "modifier_4": pl.Series([None] * m, dtype=pl.String),
            "units": np.where(rng.random(m) < 0.85, 1, rng.integers(2, 5, m)).astype(np.int32),
            "charge_cents": charge_cents,
            "place_of_service": pl.Series([None] * m, dtype=pl.String),
        }
    )


def _choose_invalid(claims: pl.DataFrame, rng: np.random.Generator, rate: float) -> tuple[pl.DataFrame, int]:
    """Make a `rate` share of claims invalid, cycling through V01-V15 so every rule is covered."""
    n = claims.height
    invalid = np.flatnonzero(rng.random(n) < rate)
    rule = np.full(n, "", dtype="<U3")
    rule[invalid] = np.array(INVALID_RULES)[np.arange(invalid.size) % len(INVALID_RULES)]
    claims = claims.with_columns(_with_nulls(rule, rule == "").alias("broken_rule"))
    claims = claims.with_columns(
        pl.when(pl.col("broken_rule") == "V12")
        .then(pl.max_horizontal("line_count", 2))
        .otherwise("line_count")
        .alias("line_count")
    )
    return claims, int(invalid.size)


def _apply_claim_breaks(claims: pl.DataFrame) -> pl.DataFrame:
    r = pl.col("broken_rule")
    flip_last = (pl.col("billing_npi").str.slice(9, 1).cast(pl.Int32) + 1) % 10
    return claims.with_columns(
        pl.when(r == "V01")
        .then(pl.col("billing_npi").str.slice(0, 9) + flip_last.cast(pl.String))
        .otherwise("billing_npi")
        .alias("billing_npi"),
        pl.when(r == "V02").then(pl.lit("1234567890")).otherwise("rendering_npi").alias("rendering_npi"),
        pl.when(r == "V03").then(pl.lit("e11.9")).otherwise("diagnosis_1").alias("diagnosis_1"),
        pl.when(r == "V11").then(pl.lit("00")).otherwise("place_of_service").alias("place_of_service"),
        pl.when(r == "V14").then(pl.lit("99999")).otherwise("mac").alias("mac"),
        pl.when(r == "V09")
        .then(pl.col("service_date") + pl.duration(days=1))
        .otherwise("patient_dob")
        .alias("patient_dob"),
        (
            pl.col("service_date") + pl.duration(days=pl.when(r == "V10").then(400).otherwise(pl.col("claim_id") % 60))
        ).alias("received_date"),
    )


def _apply_line_breaks(lines: pl.DataFrame, claims: pl.DataFrame) -> pl.DataFrame:
    lines = lines.join(claims.select("claim_id", "broken_rule"), on="claim_id", how="left")
    r, first = pl.col("broken_rule"), pl.col("line_number") == 1
    lines = lines.with_columns(
        pl.when((r == "V04") & first).then(pl.lit("12AB")).otherwise("procedure_code").alias("procedure_code"),
        pl.when((r == "V06") & first).then(pl.lit("x!")).otherwise("modifier_2").alias("modifier_2"),
        pl.when((r == "V07") & first).then(0).otherwise("units").alias("units"),
        pl.when((r == "V08") & first).then(0).otherwise("charge_cents").alias("charge_cents"),
        pl.when((r == "V11") & first).then(pl.lit("98")).otherwise("place_of_service").alias("place_of_service"),
    )
    lines = lines.with_columns(  # V05: a well-formed code with no RVU row (the pool has letter-prefixed codes only)
        pl.when((r == "V05") & first).then(pl.lit("99999")).otherwise("procedure_code").alias("procedure_code")
    )
    # V12: line 2 repeats line 1's code, modifiers and date
    line_one = lines.filter(first).select(
        "claim_id", *(pl.col(c).alias(f"{c}_1") for c in ("procedure_code", "modifier_1"))
    )
    lines = lines.join(line_one, on="claim_id", how="left").with_columns(
        pl.when((r == "V12") & (pl.col("line_number") == 2)).then(pl.col(f"{c}_1")).otherwise(c).alias(c)
        for c in ("procedure_code", "modifier_1")
    )
    return lines.filter(r.is_null() | (r != "V15")).drop("broken_rule", "procedure_code_1", "modifier_1_1")


def generate_claims(
    n: int, seed: int, first_id: int, invalid_rate: float, pool: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    rng = np.random.default_rng(seed + 1)
    claims = _claims_frame(rng, n, first_id, seed)
    claims, invalid = _choose_invalid(claims, rng, invalid_rate)
    lines = _apply_line_breaks(_lines_frame(rng, claims, pool), claims)
    claims = _apply_claim_breaks(claims)
    totals = lines.group_by("claim_id").agg(pl.col("charge_cents").sum().alias("line_total"))
    claims = claims.join(totals, on="claim_id", how="left").with_columns(
        (pl.col("line_total").fill_null(0) + pl.when(pl.col("broken_rule") == "V13").then(100).otherwise(0)).alias(
            "total_charge_cents"
        )
    )
    return claims, lines, invalid


def _money(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Decimal(14, 2)) / 100).cast(pl.Decimal(12, 2)).alias(column.removesuffix("_cents"))


def seed(
    settings: Settings, claims: int, seed: int = 42, invalid_rate: float = 0.05, directory: Path | None = None
) -> SeedResult:
    """Write and load reference files, then add `claims` pending claims after the largest claim_id."""
    directory = directory or Path(".local/reference")
    pool = code_pool(seed)
    for year, (rvu, gpci) in write_reference_files(directory, seed, pool).items():
        load_release(settings, ReleaseFiles(rvu=rvu, gpci=gpci), year=year, qp_cf=QP_CONVERSION_FACTORS.get(year))
    with source_connection(settings) as connection, connection.cursor() as cursor:
        cursor.execute(sql.load("dev/next_claim_id"))
        row: Any = cursor.fetchone()
        first_id = int(row[0])
        if claims == 0:  # the reference releases alone (numpy's string padding refuses an empty array)
            return SeedResult(first_claim_id=first_id, claims=0, lines=0, invalid=0)
        claim_frame, line_frame, invalid = generate_claims(claims, seed, first_id, invalid_rate, pool)
        copy_frame(
            cursor,
            "staging.claims",
            claim_frame.select(
                "claim_id",
                "batch_id",
                "patient_id",
                "patient_dob",
                "billing_npi",
                "rendering_npi",
                "mac",
                "locality",
                "place_of_service",
                "diagnosis_1",
                "diagnosis_2",
                "diagnosis_3",
                "diagnosis_4",
                _money("total_charge_cents"),
                "received_date",
            ),
        )
        copy_frame(
            cursor,
            "staging.claim_lines",
            line_frame.select(
                "claim_id",
                "line_number",
                "service_date",
                "procedure_code",
                "modifier_1",
                "modifier_2",
                "modifier_3",
                "modifier_4",
                "units",
                _money("charge_cents"),
                "place_of_service",
            ),
        )
        connection.commit()
    return SeedResult(first_claim_id=first_id, claims=claims, lines=line_frame.height, invalid=invalid)
