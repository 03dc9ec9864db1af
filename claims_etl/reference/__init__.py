"""Fee schedule reference data: CMS files (`cms`), the reference tables (`store`), the RVU cache (`cache`)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ReferenceFrames:
    """RVU and GPCI rows of every loaded year, numbers as exact scaled integers (schemas.RVU/GPCI)."""

    rvu: pl.DataFrame
    gpci: pl.DataFrame
