"""Which quarterly release a CMS PPRRVU file is, when the user does not say (docs/spec.md §3, §7).

CMS publishes four releases a year: January, April, July and October, zipped as RVUyyA..RVUyyD and in
force from the first day of their month. Loading an October file as "A from January 1" would price
nine months with the wrong RVUs, so without `--release/--effective` the release is read from, in
order: the PPRRVU banner ("... Relative Value File October Release"), the zip's name (RVU25D.zip), a
month in the PPRRVU file's name (PPRRVU25_JAN.csv, PPRRVU2025_Oct.csv), else the year's first
release, ``<year>A`` from January 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# Release letter and first month of each quarterly release, by the month CMS names it after.
QUARTERS = {"January": ("A", 1), "April": ("B", 4), "July": ("C", 7), "October": ("D", 10)}
_ZIP_NAME = re.compile(r"RVU(\d{2})([A-D])(?![A-Za-z])", re.IGNORECASE)
# A month abbreviation standing alone between separators: _JAN_, _Oct. (not inside "JANUS").
_MONTH_IN_NAME = re.compile(r"(?<![A-Za-z])(JAN|APR|JUL|OCT)(?![A-Za-z])", re.IGNORECASE)
_ABBREVIATIONS = {month[:3].upper(): month for month in QUARTERS}


@dataclass(frozen=True)
class Inferred:
    """A release label and effective date, and where they came from (for the one line the CLI prints)."""

    label: str
    effective: date
    source: str


def _from_month(year: int, month: str, source: str) -> Inferred:
    letter, first_month = QUARTERS[month]
    return Inferred(f"{year}{letter}", date(year, first_month, 1), source)


def infer_release(year: int, banner_month: str | None, rvu_name: str | None, zip_name: str | None) -> Inferred:
    """The release of a PPRRVU file for `year`: from its banner's month, else the zip's name (when
    its two-digit year is `year`'s), else a month in the file's name, else ``<year>A``, January 1."""
    if banner_month is not None:
        return _from_month(year, banner_month, f"the banner of {rvu_name} ({banner_month} Release)")
    zipped = _ZIP_NAME.search(zip_name or "")
    if zipped is not None and int(zipped[1]) == year % 100:
        month = next(month for month, (letter, _) in QUARTERS.items() if letter == zipped[2].upper())
        return _from_month(year, month, f"the zip's name {zip_name}")
    named = _MONTH_IN_NAME.search(rvu_name or "")
    if named is not None:
        return _from_month(year, _ABBREVIATIONS[named[1].upper()], f"the file's name {rvu_name}")
    return Inferred(f"{year}A", date(year, 1, 1), "the default: the year's first release")
