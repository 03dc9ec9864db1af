"""Fee schedule reference data: CMS files (`cms`), the reference tables (`store`), the RVU cache (`cache`)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ReferenceFrames:
    """The fee schedule that validate and price join lines against: RVU and GPCI rows of every loaded
    year, numbers as exact integers scaled by 10^4.

    Invariant: (year, hcpcs, modifier) identifies one RVU row and (year, mac, locality) one GPCI row
    (the source tables' primary keys; keying's joins check it). Read by `load_reference`, or built
    from literal rows as below.

    Attributes
    ----------
    rvu : polars.DataFrame
        PPRRVU rows in the `schemas.RVU` columns: RVUs and the conversion factor as ``*_e4``
        integers, the indicators (status code, PCTC IND, MULT PROC, ...) as the file's text.
    gpci : polars.DataFrame
        GPCI rows in the `schemas.GPCI` columns, indices as ``*_e4`` integers.

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
    >>> reference.rvu.select("hcpcs", "work_rvu_e4", "conv_factor_e4").rows()
    [('99214', 19200, 334009)]
    """

    rvu: pl.DataFrame
    gpci: pl.DataFrame
