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
        for statement in sql.statements("reference/replace_year"):
            cursor.execute(statement, {"year": year})
        copy_frame(cursor, "staging.rvu", rvu)
        copy_frame(cursor, "staging.gpci", gpci)
        cursor.execute(sql.load("reference/renew_version"), {"year": year})
        connection.commit()
    return rvu.height, gpci.height


def read_frames(settings: Settings) -> ReferenceFrames:
    """Every loaded year's RVU and GPCI rows from the source's reference tables (public as
    `claims_etl.load_reference`).

    Read straight from the database, bypassing the RVU cache (`reference.cache`, which a run reads
    through). Invariant: numbers are converted exactly to integers x 10^4, and each frame has exactly
    its schema's columns; a year appears only once `claims-etl reference load` has loaded it whole.

    Parameters
    ----------
    settings : Settings
        Where the source is (``source_url``).

    Returns
    -------
    ReferenceFrames
        The RVU rows (`schemas.RVU`) and GPCI rows (`schemas.GPCI`) of every year.

    Examples
    --------
    Needs the source database, with a year loaded:

    >>> import claims_etl as ce
    >>> reference = ce.load_reference(ce.Settings())  # doctest: +SKIP
    >>> reference.rvu.get_column("year").unique().sort().to_list()  # doctest: +SKIP
    [2025, 2026]
    """
    rvu = read_frame(settings, sql.load("reference/rvu_frame"), stage="reference")
    gpci = read_frame(settings, sql.load("reference/gpci_frame"), stage="reference")
    return ReferenceFrames(rvu=conform(rvu, RVU, name="rvu"), gpci=conform(gpci, GPCI, name="gpci"))
