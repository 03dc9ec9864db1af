"""The reference tables in the source database: load a fee schedule year atomically, and read the
in-memory frames the validate and price stages join against (cached by `reference.cache`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from claims_etl.db import sql
from claims_etl.db.connections import copy_frame, read_frame, source_connection
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cms import parse_gpci, parse_rvu
from claims_etl.schemas import GPCI, RVU, conform
from claims_etl.settings import Settings


def load_year(settings: Settings, rvu_path: Path, gpci_path: Path, year: int) -> tuple[int, int]:
    """Parse both files (refusing either if malformed), then replace `year` in one transaction."""
    rvu = parse_rvu(rvu_path).with_columns(pl.lit(year).alias("year"))
    gpci = parse_gpci(gpci_path).with_columns(pl.lit(year).alias("year"))
    with source_connection(settings) as connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM staging.rvu WHERE year = %s", [year])
        cursor.execute("DELETE FROM staging.gpci WHERE year = %s", [year])
        copy_frame(cursor, "staging.rvu", rvu)
        copy_frame(cursor, "staging.gpci", gpci)
        cursor.execute(
            "INSERT INTO staging.reference_versions (year, version) VALUES (%s, gen_random_uuid()) "
            "ON CONFLICT (year) DO UPDATE SET version = excluded.version, loaded_at = now()",
            [year],
        )
        connection.commit()
    return rvu.height, gpci.height


def read_frames(settings: Settings) -> ReferenceFrames:
    """Every loaded year's RVU and GPCI rows, read once per run."""
    rvu = read_frame(settings, sql.load("reference/rvu_frame"), stage="reference")
    gpci = read_frame(settings, sql.load("reference/gpci_frame"), stage="reference")
    return ReferenceFrames(rvu=conform(rvu, RVU, name="rvu"), gpci=conform(gpci, GPCI, name="gpci"))
