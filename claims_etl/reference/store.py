"""The reference tables in the source database: load a fee schedule release or a QP list atomically,
and read the in-memory frames the validate and price stages join against (cached by
`reference.cache`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg.rows import dict_row

from claims_etl.db import sql
from claims_etl.db.connections import copy_frame, read_frame
from claims_etl.db.source import source_connection
from claims_etl.errors import ReferenceFileError
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cms import parse_gpci, parse_qp_list, parse_rvu
from claims_etl.schemas import GPCI, QP_NPIS, RELEASES, RVU, conform
from claims_etl.settings import Settings

RELEASE_LABEL = re.compile(r"^[0-9]{4}[A-Z0-9]{1,8}$")


@dataclass(frozen=True)
class ReleaseFiles:
    """The CMS files of one release: the (non-QP) PPRRVU CSV, optionally the QP PPRRVU CSV (its
    conversion factor is the QP one) and the GPCI CSV (without one, the GPCI rows of the year's
    release before it carry over)."""

    rvu: Path
    gpci: Path | None = None
    qp_rvu: Path | None = None


@dataclass(frozen=True)
class LoadedRelease:
    release: str
    year: int
    effective_from: date
    rvu_rows: int
    gpci_rows: int
    qp_conv_factor: Decimal | None
    gpci_from: str  # the GPCI file's name, or the release its rows carried over from


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _release_of(year: int, release: str | None, effective: date | None) -> tuple[str, date]:
    """The release label and effective date, defaulted (`<year>A`, January 1) and checked."""
    label = release or f"{year}A"
    effective_from = effective or date(year, 1, 1)
    if not RELEASE_LABEL.match(label) or not label.startswith(str(year)):
        raise ReferenceFileError(f"release {label!r}: a label is the year and a letter or two, e.g. {year}B")
    if effective_from.year != year:
        raise ReferenceFileError(f"release {label}: effective {effective_from} lies outside {year}")
    return label, effective_from


def _qp_conv_factor(files: ReleaseFiles, year: int, qp_cf: Decimal | None) -> tuple[Decimal | None, str | None]:
    """The release's QP conversion factor and where it came from: `--qp-cf`, or the QP PPRRVU file
    (whose CONV FACTOR column must hold one value)."""
    if qp_cf is not None and files.qp_rvu is not None:
        raise ReferenceFileError("give the QP conversion factor once: --qp-cf or a QP PPRRVU file, not both")
    if qp_cf is not None:
        if qp_cf <= 0 or qp_cf.as_tuple().exponent < -4:  # type: ignore[operator]
            raise ReferenceFileError(f"--qp-cf {qp_cf}: a conversion factor is positive, with at most 4 decimals")
        return qp_cf, f"--qp-cf {qp_cf}"
    if files.qp_rvu is None:
        return None, None
    factors = parse_rvu(files.qp_rvu, year).get_column("conv_factor").unique()
    if factors.len() != 1:
        raise ReferenceFileError(f"{files.qp_rvu.name}: CONV FACTOR varies across rows; nothing loaded")
    return Decimal(str(factors[0])), files.qp_rvu.name


def load_release(
    settings: Settings,
    files: ReleaseFiles,
    *,
    year: int,
    release: str | None = None,
    effective: date | None = None,
    qp_cf: Decimal | None = None,
) -> LoadedRelease:
    """Parse and check every file (any fault refuses the whole load), then replace the release in one
    transaction: its RVU and GPCI rows and its row in staging.reference_releases (docs/spec.md §7).
    Without `release`/`effective` the load is release ``<year>A`` in force from January 1, which prices
    exactly like one fee schedule a year."""
    label, effective_from = _release_of(year, release, effective)
    qp_factor, qp_source = _qp_conv_factor(files, year, qp_cf)
    rvu = parse_rvu(files.rvu, year).with_columns(
        pl.lit(label).alias("release"),
        pl.lit(year).alias("year"),
        pl.lit(None if qp_factor is None else str(qp_factor), pl.String).alias("qp_conv_factor"),
    )
    gpci = (
        None
        if files.gpci is None
        else parse_gpci(files.gpci, year).with_columns(pl.lit(label).alias("release"), pl.lit(year).alias("year"))
    )
    keys = {"release": label, "year": year, "effective_from": effective_from}
    with source_connection(settings) as connection, connection.cursor() as cursor:
        taken = cursor.execute(sql.load("reference/release_taking_date"), keys).fetchone()
        if taken is not None:
            raise ReferenceFileError(
                f"release {label}: {taken[0]} is already in force from {effective_from}; nothing loaded"
            )
        for statement in sql.statements("reference/replace_release"):
            cursor.execute(statement, keys)
        copy_frame(cursor, "staging.rvu", rvu)
        if files.gpci is not None and gpci is not None:
            copy_frame(cursor, "staging.gpci", gpci)
            gpci_from, gpci_sha256, gpci_rows = files.gpci.name, sha256_of(files.gpci), gpci.height
        else:
            gpci_from, gpci_rows = _carry_gpci(cursor, keys)
            gpci_sha256 = ""
        record = keys | {
            "rvu_file": files.rvu.name,
            "rvu_sha256": sha256_of(files.rvu),
            "qp_source": qp_source,
            "gpci_file": gpci_from,
            "gpci_sha256": gpci_sha256,
        }
        try:
            cursor.execute(sql.load("reference/record_release"), record)
        except psycopg.errors.UniqueViolation:
            raise ReferenceFileError(
                f"release {label}: another {year} release is already in force from {effective_from}; nothing loaded"
            ) from None
        connection.commit()
    return LoadedRelease(label, year, effective_from, rvu.height, gpci_rows, qp_factor, gpci_from)


def _carry_gpci(cursor: psycopg.Cursor[Any], keys: dict[str, Any]) -> tuple[str, int]:
    """Copy the GPCI rows of the year's release before this one; refuse when there is none."""
    row = cursor.execute(sql.load("reference/release_before"), keys).fetchone()
    if row is None:
        raise ReferenceFileError(
            f"release {keys['release']}: no GPCI file, and no earlier {keys['year']} release to take its GPCI from; "
            "nothing loaded"
        )
    cursor.execute(sql.load("reference/carry_gpci"), keys | {"from_release": row[0]})
    return f"from {row[0]}", int(cursor.rowcount)


def load_qp_list(settings: Settings, path: Path, year: int) -> int:
    """Replace `year`'s QP list with the NPIs of a CSV whose header is ``npi`` (one NPI a line); the
    file is refused whole for a missing header, an NPI that is not 10 digits, or a duplicate."""
    npis = parse_qp_list(path)
    with source_connection(settings) as connection, connection.cursor() as cursor:
        for statement in sql.statements("reference/replace_qp"):
            cursor.execute(statement, {"year": year})
        copy_frame(cursor, "staging.qp_npis", npis.with_columns(pl.lit(year).alias("year")))
        record = {"year": year, "file": path.name, "sha256": sha256_of(path), "npis": npis.height}
        cursor.execute(sql.load("reference/record_qp"), record)
        connection.commit()
    return npis.height


def list_releases(settings: Settings) -> list[dict[str, Any]]:
    """Every loaded release, newest first: label, year, effective date, files, sha256, row counts."""
    with source_connection(settings) as connection, connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql.load("reference/list_releases")).fetchall()


def load_year(settings: Settings, rvu_path: Path, gpci_path: Path, year: int) -> tuple[int, int]:
    """The year's first release (``<year>A``, in force from January 1) from a PPRRVU and a GPCI file."""
    loaded = load_release(settings, ReleaseFiles(rvu=rvu_path, gpci=gpci_path), year=year)
    return loaded.rvu_rows, loaded.gpci_rows


def read_frames(settings: Settings) -> ReferenceFrames:
    """Every loaded release's RVU and GPCI rows, the releases' effective dates and the QP lists, from
    the source's reference tables (public as `claims_etl.load_reference`).

    Read straight from the database, bypassing the RVU cache (`reference.cache`, which a run reads
    through). Invariant: numbers are converted exactly to integers x 10^4, and each frame has exactly
    its schema's columns; a release appears only once `claims-etl reference load` has loaded it whole.

    Parameters
    ----------
    settings : Settings
        Where the source is (``source_url``).

    Returns
    -------
    ReferenceFrames
        The RVU rows (`schemas.RVU`) and GPCI rows (`schemas.GPCI`) of every release, the releases
        (`schemas.RELEASES`) and the QP lists (`schemas.QP_NPIS`).

    Examples
    --------
    Needs the source database, with a year loaded:

    >>> import claims_etl as ce
    >>> reference = ce.load_reference(ce.Settings())  # doctest: +SKIP
    >>> reference.rvu.get_column("year").unique().sort().to_list()  # doctest: +SKIP
    [2025, 2026]
    """
    frames = {
        name: conform(read_frame(settings, sql.load(f"reference/{name}_frame"), stage="reference"), schema, name=name)
        for name, schema in (("rvu", RVU), ("gpci", GPCI), ("releases", RELEASES), ("qp", QP_NPIS))
    }
    return ReferenceFrames(rvu=frames["rvu"], gpci=frames["gpci"], releases=frames["releases"], qp_npis=frames["qp"])
