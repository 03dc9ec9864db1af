"""Synthetic pending claims in the contract's shapes, with realistic shape and a share of invalid
claims that together break every rule V01-V15, seeded into the staging database with their reference
release (`seed`). Deterministic for a given seed; generated column-wise (numpy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.db.source import source_connection
from claims_etl.db.source_reads import copy_frame
from claims_etl.errors import ConfigurationError
from claims_etl.reference.store import ReleaseFiles, load_release
from claims_etl.settings import Settings
from claims_etl.synthetic.reference_files import (
    LOCALITIES,
    code_pool,
    valid_npis,
    write_reference_files,
)

QP_CONVERSION_FACTORS = {2026: Decimal("33.5675")}  # qualifying APM participants, from 2026
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
MAX_CLAIM_ID = 2**63 - 1  # staging.claims.claim_id is a bigint


@dataclass(frozen=True)
class SeedResult:
    first_claim_id: int
    claims: int
    lines: int
    invalid: int


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


def _first_claim_id(cursor: psycopg.Cursor[Any], claims: int) -> int:
    """The claim_id after the largest one (dev/next_claim_id.sql, numeric: the largest may be 2^63 - 1),
    if `claims` more ids fit in a bigint from there."""
    cursor.execute(sql.load("dev/next_claim_id"))
    row: Any = cursor.fetchone()
    cursor.connection.commit()  # no transaction left open while the reference releases load
    first_id = int(row[0])
    if first_id + claims - 1 > MAX_CLAIM_ID:
        raise ConfigurationError(
            f"seed: no room for {claims} more claims after the largest claim_id, {first_id - 1}: "
            f"a claim_id is a bigint, at most {MAX_CLAIM_ID}"
        )
    return first_id


def seed(
    settings: Settings, claims: int, seed: int = 42, invalid_rate: float = 0.05, directory: Path | None = None
) -> SeedResult:
    """Write and load reference files, then add `claims` pending claims after the largest claim_id.
    Refuses (ConfigurationError, before loading anything) when they would pass 2^63 - 1."""
    directory = directory or Path(".local/reference")
    pool = code_pool(seed)
    with source_connection(settings) as connection, connection.cursor() as cursor:
        first_id = _first_claim_id(cursor, claims)
        for year, (rvu, gpci) in write_reference_files(directory, seed, pool).items():
            # January releases: the 2026 work GPCI with the 1.0 floor, in force through January 31.
            files = ReleaseFiles(rvu=rvu, gpci=gpci)
            load_release(settings, files, year=year, qp_cf=QP_CONVERSION_FACTORS.get(year), work_gpci="floor")
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
