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
from claims_etl.db.source import source_connection
from claims_etl.db.source_reads import copy_frame, read_frame
from claims_etl.errors import ConfigurationError, ReferenceFileError
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.cms import GpciFile, RvuFile, WorkGpci, parse_qp_list, parse_rvu, read_gpci, read_rvu
from claims_etl.reference.cms_release import Inferred, infer_release
from claims_etl.schemas import GPCI, QP_NPIS, RELEASES, RVU, conform
from claims_etl.settings import Settings

RELEASE_LABEL = re.compile(r"^[0-9]{4}[A-Z0-9]{1,8}$")


@dataclass(frozen=True)
class ReleaseFiles:
    """The CMS files of one release: the (non-QP) PPRRVU CSV, optionally the QP PPRRVU CSV (its
    conversion factor is the QP one) and the GPCI CSV. Without a GPCI file the GPCI rows of the year's
    release before it carry over; without a PPRRVU file (a GPCI-only release) its RVU rows do.
    `zip_name` is the zip the files came from, a hint to the release (`reference.cms_release`)."""

    rvu: Path | None = None
    gpci: Path | None = None
    qp_rvu: Path | None = None
    zip_name: str | None = None


@dataclass(frozen=True)
class LoadedRelease:
    release: str
    year: int
    effective_from: date
    rvu_rows: int
    gpci_rows: int
    qp_conv_factor: Decimal | None
    gpci_from: str  # the GPCI file's name, or the release its rows carried over from
    rvu_from: str = ""  # the PPRRVU file's name, or the release its rows carried over from
    work_gpci: str | None = None  # "floor" or "no-floor" when the work GPCI column's name says which
    inferred: Inferred | None = None  # the release label or date read from the files, not given


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked_release(year: int, label: str, effective_from: date) -> None:
    if not RELEASE_LABEL.match(label) or not label.startswith(str(year)):
        raise ReferenceFileError(
            f"release {label!r}: a label is the year and 1-8 capital letters or digits, e.g. {year}B or {year}A2"
        )
    if effective_from.year != year:
        raise ReferenceFileError(f"release {label}: effective {effective_from} lies outside {year}")


def _release_of(
    files: ReleaseFiles, year: int, release: str | None, effective: date | None, banner_month: str | None
) -> tuple[str, date, Inferred | None]:
    """The release label and effective date: as given, else inferred from the PPRRVU file (its banner,
    the zip's name, its own name; `reference.cms_release`). A GPCI-only release has nothing to infer
    them from."""
    if release is not None and effective is not None:
        _checked_release(year, release, effective)
        return release, effective, None
    if files.rvu is None:
        raise ConfigurationError("a GPCI-only release needs its label and date: give --release and --effective")
    inferred = infer_release(year, banner_month, files.rvu.name, files.zip_name)
    label, effective_from = release or inferred.label, effective or inferred.effective
    _checked_release(year, label, effective_from)
    return label, effective_from, inferred


def _qp_conv_factor(files: ReleaseFiles, year: int, qp_cf: Decimal | None) -> tuple[Decimal | None, str | None]:
    """The release's QP conversion factor and where it came from: `--qp-cf`, or the QP PPRRVU file
    (whose CONV FACTOR column must hold one value)."""
    if qp_cf is not None and files.qp_rvu is not None:
        raise ReferenceFileError("give the QP conversion factor once: --qp-cf or a QP PPRRVU file, not both")
    if files.rvu is None and (qp_cf is not None or files.qp_rvu is not None):
        raise ConfigurationError("a GPCI-only release keeps the QP conversion factor of the release before it")
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
    work_gpci: WorkGpci | None = None,
) -> LoadedRelease:
    """Parse and check every file (any fault refuses the whole load), then replace the release in one
    transaction: its RVU and GPCI rows and its row in staging.reference_releases (docs/spec.md §7).

    Without `release`/`effective` they are inferred from the PPRRVU file (`reference.cms_release`;
    ``<year>A`` from January 1 when nothing names a quarter). `work_gpci` chooses the GPCI file's work
    column where it has two (2026: without and with the 1.0 floor). A release without a GPCI file takes
    the GPCI rows of the year's release before it; one without a PPRRVU file (GPCI-only, `release` and
    `effective` given) its RVU rows and QP conversion factor."""
    if files.rvu is None and files.gpci is None:
        raise ConfigurationError("a release needs a PPRRVU file, a GPCI file, or both")
    qp_factor, qp_source = _qp_conv_factor(files, year, qp_cf)
    rvu_file = None if files.rvu is None else read_rvu(files.rvu, year)
    label, effective_from, inferred = _release_of(
        files, year, release, effective, None if rvu_file is None else rvu_file.release_month
    )
    gpci_file = None if files.gpci is None else read_gpci(files.gpci, year, work_gpci)
    keys = {"release": label, "year": year, "effective_from": effective_from}
    with source_connection(settings) as connection, connection.cursor() as cursor:
        taken = cursor.execute(sql.load("reference/release_taking_date"), keys).fetchone()
        if taken is not None:
            raise ReferenceFileError(
                f"release {label}: {taken[0]} is already in force from {effective_from}; nothing loaded"
            )
        for statement in sql.statements("reference/replace_release"):
            cursor.execute(statement, keys)
        before = cursor.execute(sql.load("reference/release_before"), keys).fetchone()
        record: dict[str, Any] = keys | _store_rvu(cursor, keys, files, rvu_file, before, (qp_factor, qp_source))
        record |= _store_gpci(cursor, keys, files, gpci_file, before)
        try:
            cursor.execute(sql.load("reference/record_release"), record)
        except psycopg.errors.UniqueViolation:
            raise ReferenceFileError(
                f"release {label}: another {year} release is already in force from {effective_from}; nothing loaded"
            ) from None
        connection.commit()
    return LoadedRelease(
        label,
        year,
        effective_from,
        record["rvu_rows"],
        record["gpci_rows"],
        qp_factor,
        record["gpci_file"],
        rvu_from=record["rvu_file"],
        work_gpci=record["work_gpci"],
        inferred=inferred,
    )


def _carried_from(before: tuple[Any, ...] | None, keys: dict[str, Any], what: str) -> str:
    """The release rows carry over from: the year's release in force before this one."""
    if before is None:
        raise ReferenceFileError(
            f"release {keys['release']}: no {what} file, and no earlier {keys['year']} release in force before "
            f"{keys['effective_from']} to take its {what} rows from; nothing loaded"
        )
    return str(before[0])


def _store_rvu(
    cursor: psycopg.Cursor[Any],
    keys: dict[str, Any],
    files: ReleaseFiles,
    rvu_file: RvuFile | None,
    before: tuple[Any, ...] | None,
    qp: tuple[Decimal | None, str | None],
) -> dict[str, Any]:
    """The release's RVU rows: the PPRRVU file's, else (a GPCI-only release) the release before's,
    QP conversion factor included. Returns the columns of its record."""
    if files.rvu is None or rvu_file is None:
        from_release = _carried_from(before, keys, "PPRRVU")
        cursor.execute(sql.load("reference/carry_rvu"), keys | {"from_release": from_release})
        qp_source = None if before is None or before[1] is None else f"from {from_release}"
        return {
            "rvu_file": f"from {from_release}",
            "rvu_sha256": "",
            "qp_source": qp_source,
            "rvu_rows": cursor.rowcount,
        }
    qp_factor, qp_source = qp
    rows = rvu_file.rows.with_columns(
        pl.lit(keys["release"]).alias("release"),
        pl.lit(keys["year"]).alias("year"),
        pl.lit(None if qp_factor is None else str(qp_factor), pl.String).alias("qp_conv_factor"),
    )
    copy_frame(cursor, "staging.rvu", rows)
    return {
        "rvu_file": files.rvu.name,
        "rvu_sha256": sha256_of(files.rvu),
        "qp_source": qp_source,
        "rvu_rows": rows.height,
    }


def _store_gpci(
    cursor: psycopg.Cursor[Any],
    keys: dict[str, Any],
    files: ReleaseFiles,
    gpci_file: GpciFile | None,
    before: tuple[Any, ...] | None,
) -> dict[str, Any]:
    """The release's GPCI rows: the GPCI file's, else the release before's (with its work GPCI choice).
    Returns the columns of its record."""
    if files.gpci is None or gpci_file is None:
        from_release = _carried_from(before, keys, "GPCI")
        cursor.execute(sql.load("reference/carry_gpci"), keys | {"from_release": from_release})
        work_gpci = None if before is None else before[2]
        return {
            "gpci_file": f"from {from_release}",
            "gpci_sha256": "",
            "work_gpci": work_gpci,
            "gpci_rows": cursor.rowcount,
        }
    rows = gpci_file.rows.with_columns(pl.lit(keys["release"]).alias("release"), pl.lit(keys["year"]).alias("year"))
    copy_frame(cursor, "staging.gpci", rows)
    return {
        "gpci_file": files.gpci.name,
        "gpci_sha256": sha256_of(files.gpci),
        "work_gpci": gpci_file.work_gpci,
        "gpci_rows": rows.height,
    }


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


def load_year(
    settings: Settings, rvu_path: Path, gpci_path: Path, year: int, *, work_gpci: WorkGpci | None = None
) -> tuple[int, int]:
    """The year's first release (``<year>A``, in force from January 1) from a PPRRVU and a GPCI file;
    `work_gpci` as for `load_release`."""
    loaded = load_release(
        settings,
        ReleaseFiles(rvu=rvu_path, gpci=gpci_path),
        year=year,
        release=f"{year}A",
        effective=date(year, 1, 1),
        work_gpci=work_gpci,
    )
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
