"""Fee schedule reference data: CMS files (`cms`), the reference tables (`store`), the RVU cache (`cache`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from claims_etl.schemas import GPCI, QP_NPIS, RELEASES, RVU, Schema


@dataclass(frozen=True)
class ReferenceFrames:
    """The fee schedule that validate and price join lines against: RVU and GPCI rows of every loaded
    release, numbers as exact integers scaled by 10^4, the releases' effective dates, and the QP lists.

    Invariant: (release, hcpcs, modifier) identifies one RVU row and (release, mac, locality) one GPCI
    row (the source tables' primary keys; keying's joins check it); a line is priced with the release
    of its service year whose ``effective_from`` is the latest on or before its service date. Read by
    `load_reference`, or built from literal rows as below: rows without a release belong to release
    ``<year>A`` and, without a `releases` frame, each release is in force from January 1 of its year.

    Attributes
    ----------
    rvu : polars.DataFrame
        PPRRVU rows in the `schemas.RVU` columns: RVUs and the conversion factor as ``*_e4``
        integers, the indicators (status code, PCTC IND, MULT PROC, ...) as the file's text.
    gpci : polars.DataFrame
        GPCI rows in the `schemas.GPCI` columns, indices as ``*_e4`` integers.
    releases : polars.DataFrame
        One row per release in the `schemas.RELEASES` columns (label, service year, effective date).
    qp_npis : polars.DataFrame
        NPIs priced with the QP conversion factor, per service year (`schemas.QP_NPIS`).

    Examples
    --------
    CMS's 2026 row for 99214 (work RVU 1.92, CF 33.4009) and a locality with every GPCI 1.0; a column
    left out of a row is null:

    >>> import polars as pl
    >>> from claims_etl import ReferenceFrames
    >>> from claims_etl.schemas import GPCI, RVU
    >>> rvu = pl.DataFrame([{"year": 2026, "hcpcs": "99214", "modifier": "", "status_code": "A",
    ...     "work_rvu_e4": 19_200, "nonfac_pe_rvu_e4": 20_000, "facility_pe_rvu_e4": 4_700,
    ...     "mp_rvu_e4": 1_400, "conv_factor_e4": 334_009}], schema=RVU)
    >>> gpci = pl.DataFrame([{"year": 2026, "mac": "01112", "locality": "05", "pw_gpci_e4": 10_000,
    ...     "pe_gpci_e4": 10_000, "mp_gpci_e4": 10_000}], schema=GPCI)
    >>> reference = ReferenceFrames(rvu=rvu, gpci=gpci)
    >>> reference.rvu.select("release", "hcpcs", "work_rvu_e4", "conv_factor_e4").rows()
    [('2026A', '99214', 19200, 334009)]
    >>> reference.releases.rows()
    [('2026A', 2026, datetime.date(2026, 1, 1))]
    """

    rvu: pl.DataFrame
    gpci: pl.DataFrame
    releases: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RELEASES))
    qp_npis: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QP_NPIS))
    # Frames the stages derive from these alone (`derived`), built once: the frames never change.
    _derived: dict[str, pl.DataFrame] = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """The frame `build` makes of these frames, built on first use and kept: a run validates and
        prices range after range against one ReferenceFrames (the RVU cache keeps it across runs),
        and the lookup tables keying makes of them are the same every time. Not locked: two threads
        may both build it once, which is harmless as every build is deterministic (and a lock would
        not pickle to Dask workers)."""
        if name not in self._derived:
            self._derived[name] = build()
        return self._derived[name]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rvu", _with_release(self.rvu))
        object.__setattr__(self, "gpci", _with_release(self.gpci))
        if self.releases.is_empty() and not self.rvu.is_empty():
            object.__setattr__(self, "releases", _one_release_a_year(self.rvu, self.gpci))


# Each field of ReferenceFrames and its declared schema (the cache stores and checks them by name).
FRAME_SCHEMAS: dict[str, Schema] = {"rvu": RVU, "gpci": GPCI, "releases": RELEASES, "qp_npis": QP_NPIS}


def _with_release(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows without a release label belong to their year's first release, ``<year>A``."""
    default = pl.col("year").cast(pl.String) + "A"
    if "release" not in frame.columns:
        return frame.with_columns(default.alias("release"))
    if frame.get_column("release").null_count() == 0:
        return frame
    return frame.with_columns(pl.col("release").fill_null(default))


def _one_release_a_year(rvu: pl.DataFrame, gpci: pl.DataFrame) -> pl.DataFrame:
    """Releases for frames built without their dates: each in force from January 1 of its year,
    which is only unambiguous with one release a year."""
    releases = pl.concat([rvu.select("release", "year"), gpci.select("release", "year")]).unique()
    if releases.get_column("year").n_unique() != releases.height:
        raise ValueError("several releases in one year need a releases frame with their effective dates")
    effective = pl.date(pl.col("year"), 1, 1).alias("effective_from")
    return releases.with_columns(effective).select(list(RELEASES)).cast(RELEASES).sort("year")  # type: ignore[arg-type]
