"""CMS Physician Fee Schedule files as CMS publishes them: the PPRRVU and GPCI CSVs (docs/spec.md §3),
their columns found by header name, checked and parsed into frames of cells as text (reading the raw
file is `reference.cms_csv`, the RVU zip `reference.cms_zip`). A malformed file is refused whole with one
`ReferenceFileError` whose message is one line naming the file (base name), the 1-based file line and
the column; nothing here touches a database.

Columns are found by name, never by position: CMS moves them between years (2026 inserted PRIC IND
after TEAM SURG). A column's name is its stacked header cells joined with one space (`WORK RVU`,
`CO- SURG`); columns this module does not know are ignored. A file is refused for:

- a needed column missing from the header, or any column it reads matching two header columns;
- a data row with fewer cells than the last column read (a truncated row would read as blanks);
- an empty row, or a row that is not a data row, between the first and the last data row (footnotes
  and empty rows after the data, and blank lines under the header, are skipped);
- a numeric cell that is not a decimal with at most 4 places (frames are later scaled by 10^4);
- per numeric column, what a blank cell means. A blank holds 0 only where pricing (spec §4) does not
  read the number, because a blank there would price at $0:

  ===========================================  ===============  ==========================
  column                                       blank            other value refused
  ===========================================  ===============  ==========================
  WORK RVU, NON-FAC PE RVU, FACILITY PE RVU,   refused          negative
  MP RVU
  CONV FACTOR                                  refused          zero or negative
  the three "... USED FOR OPPS PAYMENT AMOUNT"  0 (no cap)       negative
  NON-FACILITY/FACILITY TOTAL, PRE/INTRA/      0                (format only)
  POST OP
  GPCI PW, PE, MP GPCI                         refused          zero or negative
  ===========================================  ===============  ==========================

  (``-0.00`` is zero, not negative.) A file without the OPPS columns (older or hand-made files) reads
  as all 0: no imaging cap.
- a repeated key: HCPCS+MOD in a PPRRVU file, MAC+locality (after zero-padding) in a GPCI file;
- a year other than the one asked for. The title line is the first non-empty line above the header;
  its year is the first ``PPRRVUyy`` token (20yy) or 4-digit year 19xx/20xx in it, so a later date in
  the title is not read as the fee schedule year. In a GPCI file every 4-digit year in the PW/PE/MP
  GPCI column names must be the year too. A file that names no year is taken on trust.
- GPCI only: two work GPCI columns (2026: without and with the 1.0 floor) and no `work_gpci` choice,
  or a choice the file's one work column contradicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from claims_etl.reference.cms_csv import (
    Found,
    Wanted,
    check_cells,
    check_title_year,
    column_names,
    data_rows,
    find_columns,
    find_header,
    header_top,
    key_columns,
    name_key,
    named,
    read_cms_csv,
    read_rows,
    refusal,
    refuse_duplicates,
    refuse_short_rows,
    selected,
)

WorkGpci = Literal["floor", "no-floor"]

# The PPRRVU columns read, in the order of `staging.rvu` (names as CMS's joined headers spell them).
RVU_WANTED = (
    named("hcpcs", "HCPCS"),
    named("modifier", "MOD"),
    named("description", "DESCRIPTION"),
    named("status_code", "STATUS CODE"),
    named("not_used_for_medicare", "NOT USED FOR MEDICARE PAYMENT", required=False),
    named("work_rvu", "WORK RVU"),
    named("nonfac_pe_rvu", "NON-FAC PE RVU"),
    named("nonfac_na_indicator", "NON-FAC NA INDICATOR", required=False),
    named("facility_pe_rvu", "FACILITY PE RVU"),
    named("facility_na_indicator", "FACILITY NA INDICATOR", required=False),
    named("mp_rvu", "MP RVU"),
    named("nonfac_total", "NON-FACILITY TOTAL", required=False),
    named("facility_total", "FACILITY TOTAL", required=False),
    named("pctc_ind", "PCTC IND"),
    named("glob_days", "GLOB DAYS"),
    named("pre_op", "PRE OP", required=False),
    named("intra_op", "INTRA OP", required=False),
    named("post_op", "POST OP", required=False),
    named("mult_proc", "MULT PROC"),
    named("bilat_surg", "BILAT SURG"),
    named("asst_surg", "ASST SURG"),
    named("co_surg", "CO- SURG"),
    named("team_surg", "TEAM SURG"),
    named("pric_ind", "PRIC IND", required=False),  # from 2026
    named("endo_base", "ENDO BASE", required=False),
    named("conv_factor", "CONV FACTOR"),
    named("diag_imaging_family", "DIAGNOSTIC IMAGING FAMILY INDICATOR", required=False),
    named("opps_nonfac_pe_rvu", "NON-FACILITY PE USED FOR OPPS PAYMENT AMOUNT", required=False),
    named("opps_facility_pe_rvu", "FACILITY PE USED FOR OPPS PAYMENT AMOUNT", required=False),
    named("opps_mp_rvu", "MP USED FOR OPPS PAYMENT AMOUNT", required=False),
)
RVU_COLUMNS = tuple(want.column for want in RVU_WANTED)
# Numeric columns pricing needs (spec §4): present, a number, never negative (the CF above 0).
RVU_RVUS = ("work_rvu", "nonfac_pe_rvu", "facility_pe_rvu", "mp_rvu")
RVU_REQUIRED = (*RVU_RVUS, "conv_factor")
RVU_OPPS = ("opps_nonfac_pe_rvu", "opps_facility_pe_rvu", "opps_mp_rvu")
# Numeric columns where a blank cell (or a missing column) means 0.
RVU_BLANK_IS_ZERO = ("nonfac_total", "facility_total", "pre_op", "intra_op", "post_op", *RVU_OPPS)
RVU_NUMERIC = (*RVU_REQUIRED, *RVU_BLANK_IS_ZERO)

GPCI_WANTED = (
    Wanted("mac", "Medicare Administrative Contractor", lambda name: name_key(name).startswith("MEDICARE ADMIN")),
    named("state", "State"),
    named("locality", "Locality Number"),
    named("locality_name", "Locality Name"),
    Wanted("pe_gpci", "PE GPCI", lambda name: "PE GPCI" in name_key(name)),
    Wanted("mp_gpci", "MP GPCI", lambda name: "MP GPCI" in name_key(name)),
)
GPCI_COLUMNS = ("mac", "state", "locality", "locality_name", "pw_gpci", "pe_gpci", "mp_gpci")
GPCI_TITLES = dict(
    zip(
        GPCI_COLUMNS, ("MAC", "State", "Locality Number", "Locality Name", "PW GPCI", "PE GPCI", "MP GPCI"), strict=True
    )
)
GPCI_NUMERIC = ("pw_gpci", "pe_gpci", "mp_gpci")
_HCPCS = r"^[A-Z0-9]{5}$"
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
# CMS's banner names the quarterly release: "... Relative Value File October Release".
_RELEASE_MONTH = re.compile(r"\b(January|April|July|October)\s+Release\b", re.IGNORECASE)


@dataclass(frozen=True)
class RvuFile:
    """A parsed PPRRVU file: its rows (`RVU_COLUMNS`, cells as text) and the month its banner names
    ("January", "April", "July", "October"), if any."""

    rows: pl.DataFrame
    release_month: str | None


@dataclass(frozen=True)
class GpciFile:
    """A parsed GPCI file: its rows (`GPCI_COLUMNS`) and which work GPCI they hold: "floor" or
    "no-floor" when the column's name says, None when it does not."""

    rows: pl.DataFrame
    work_gpci: WorkGpci | None


def _release_month(banner: list[list[str]]) -> str | None:
    for row in banner:
        for cell in row:
            month = _RELEASE_MONTH.search(cell)
            if month is not None:
                return month[1].capitalize()
    return None


def read_rvu(path: Path, year: int) -> RvuFile:
    """A PPRRVU CSV as published for fee schedule `year`: columns found by name, title year and cells
    checked (module docstring), one row per HCPCS and modifier, cells as text (blank totals, op
    shares and OPPS RVUs as "0"), and the release month its banner names."""
    table = read_cms_csv(path)
    header_index = find_header(table, "HCPCS", "PPRRVU (RVU)")
    top = header_top(table, header_index)
    names = column_names(table.head[top : header_index + 1])
    positions = find_columns(path, header_index + 1, names, RVU_WANTED)
    found = Found(positions, {want.column: want.title for want in RVU_WANTED})
    check_title_year(path, table.head[:top], year)
    rows = read_rows(table, header_index, len(names))
    body = selected(rows, found, RVU_COLUMNS, ("hcpcs", "modifier", "status_code", *RVU_NUMERIC))
    # A footnote under the data has no code in the HCPCS column and no number pricing reads.
    is_data = pl.col("hcpcs").str.contains(_HCPCS) | pl.any_horizontal(pl.col(RVU_REQUIRED) != "")
    body = data_rows(path, body, is_data, "RVU")
    refuse_short_rows(path, body, found, names)
    body = check_cells(
        path,
        body,
        found,
        required=RVU_REQUIRED,
        blank_is_zero=RVU_BLANK_IS_ZERO,
        nonnegative=(*RVU_RVUS, *RVU_OPPS),
        positive=("conv_factor",),
    )
    _refuse_bad_codes(path, body, found)
    refuse_duplicates(path, body, ["hcpcs", "modifier"], key_columns(found, ["hcpcs", "modifier"]))
    return RvuFile(body.drop("file_line", "fields"), _release_month(table.head[:top]))


def _refuse_bad_codes(path: Path, body: pl.DataFrame, found: Found) -> None:
    bad_codes = body.filter(~pl.col("hcpcs").str.contains(_HCPCS) | ~pl.col("status_code").str.contains(r"^[A-Z]$"))
    if bad_codes.height:
        row = bad_codes.row(0, named=True)
        column = "hcpcs" if not re.match(_HCPCS, row["hcpcs"]) else "status_code"
        raise refusal(
            path,
            row["file_line"],
            found.where(column),
            f"{row[column]!r}: HCPCS must be 5 letters or digits and STATUS CODE one letter",
        )


def parse_rvu(path: Path, year: int) -> pl.DataFrame:
    """The rows of `read_rvu`."""
    return read_rvu(path, year).rows


def release_month(path: Path) -> str | None:
    """The release month a PPRRVU file's banner names ("October"), without checking the file."""
    table = read_cms_csv(path)
    header_index = find_header(table, "HCPCS", "PPRRVU (RVU)")
    return _release_month(table.head[: header_top(table, header_index)])


# ---------------------------------------------------------------- GPCI (Addendum E)


def _floor_kind(name: str) -> WorkGpci | None:
    """What a work GPCI column's name says about the 1.0 floor: "(with 1.0 Floor)", "(without ...)"."""
    key = name_key(name)
    if "FLOOR" not in key:
        return None
    return "no-floor" if "WITHOUT" in key else "floor"


def _work_column(path: Path, line: int, names: list[str], choice: WorkGpci | None) -> tuple[int, WorkGpci | None]:
    """The position of the work GPCI column to load, and its floor kind. Both kinds present need a
    choice; one column takes a choice only when it does not say the opposite."""
    columns = [(position, _floor_kind(name)) for position, name in enumerate(names) if "PW GPCI" in name_key(name)]
    if not columns:
        raise refusal(path, line, "header", "no column named 'PW GPCI', which pricing needs")
    kinds = [kind for _, kind in columns]
    if len(columns) == 2 and sorted(map(str, kinds)) == ["floor", "no-floor"]:
        if choice is None:
            both = " and ".join(repr(names[position]) for position, _ in columns)
            raise refusal(path, line, "header", f"it has both {both}; choose one with --work-gpci floor|no-floor")
        return next((position, kind) for position, kind in columns if kind == choice)
    if len(columns) > 1:
        listed = " and ".join(f"{position + 1} ({names[position]!r})" for position, _ in columns)
        raise refusal(path, line, "header", f"'PW GPCI' is ambiguous: columns {listed} both match it")
    position, kind = columns[0]
    if choice is not None and kind is not None and kind != choice:
        raise refusal(
            path, line, "header", f"--work-gpci {choice}, but its only work GPCI column is {names[position]!r}"
        )
    return position, kind


def _check_column_years(path: Path, line: int, names: list[str], found: Found, year: int) -> None:
    for column in GPCI_NUMERIC:
        named_years = [int(other) for other in _YEAR.findall(names[found.positions[column]])]
        other = next((found_year for found_year in named_years if found_year != year), None)
        if other is not None:
            name = names[found.positions[column]]
            raise refusal(path, line, found.where(column), f"{name!r} is for {other}, not {year}")


def read_gpci(path: Path, year: int, work_gpci: WorkGpci | None = None) -> GpciFile:
    """A CMS GPCI CSV (Addendum E) as published for fee schedule `year`: columns found by name, the
    work GPCI column chosen by `work_gpci` where the file has two, title and column years and cells
    checked (module docstring), MAC and locality zero-padded (re-saved copies lose the zeros)."""
    table = read_cms_csv(path)
    header_index = find_header(table, "Medicare Administrative Contractor", "GPCI")
    names = column_names([table.head[header_index]])
    line = header_index + 1
    positions = find_columns(path, line, names, GPCI_WANTED)
    pw_position, kind = _work_column(path, line, names, work_gpci)
    found = Found(positions | {"pw_gpci": pw_position}, GPCI_TITLES)
    check_title_year(path, table.head[:header_index], year)
    _check_column_years(path, line, names, found, year)
    rows = selected(read_rows(table, header_index, len(names)), found, GPCI_COLUMNS, ("mac", "locality", *GPCI_NUMERIC))
    # Blank lines and footnotes under the table are not data rows: no digits for a MAC, no GPCI.
    is_data = pl.col("mac").str.contains(r"^\d+$") | pl.any_horizontal(pl.col(GPCI_NUMERIC) != "")
    body = data_rows(path, rows, is_data, "GPCI")
    refuse_short_rows(path, body, found, names)
    body = check_cells(
        path, body, found, required=GPCI_NUMERIC, blank_is_zero=(), nonnegative=(), positive=GPCI_NUMERIC
    )
    bad_keys = body.filter(~pl.col("mac").str.contains(r"^\d{1,5}$") | ~pl.col("locality").str.contains(r"^\d{1,2}$"))
    if bad_keys.height:
        row = bad_keys.row(0, named=True)
        column = "mac" if not re.fullmatch(r"\d{1,5}", row["mac"]) else "locality"
        what = f"{row[column]!r}: MAC must be 5 digits and the locality number 2 digits"
        raise refusal(path, row["file_line"], found.where(column), what)
    body = body.with_columns(pl.col("mac").str.zfill(5), pl.col("locality").str.zfill(2))
    refuse_duplicates(path, body, ["mac", "locality"], key_columns(found, ["mac", "locality"]))
    return GpciFile(body.drop("file_line", "fields"), kind)


def parse_gpci(path: Path, year: int, work_gpci: WorkGpci | None = None) -> pl.DataFrame:
    """The rows of `read_gpci`."""
    return read_gpci(path, year, work_gpci).rows


# ---------------------------------------------------------------- QP list


def parse_qp_list(path: Path) -> pl.DataFrame:
    """A QP list: a CSV whose first line is the header ``npi``, then one NPI a line (blank lines
    skipped). Refused whole, naming the line, for a missing header, an NPI that is not 10 digits, or
    a repeated NPI. Returns one column, ``npi`` (text)."""
    table = read_cms_csv(path)
    first = table.head[0][0].strip().lower() if table.head and table.head[0] else ""
    if first != "npi":
        raise refusal(path, 1, "column 1", f"the header is {first!r}, a QP list's is 'npi'")
    body = (
        read_rows(table, 0, 1).select("file_line", pl.col("c1").fill_null("").alias("npi")).filter(pl.col("npi") != "")
    )
    bad = body.filter(~pl.col("npi").str.contains(r"^\d{10}$")).head(1)
    if bad.height:
        raise refusal(path, bad.item(0, "file_line"), "column 1 (npi)", f"{bad.item(0, 'npi')!r} is not 10 digits")
    refuse_duplicates(path, body, ["npi"], "column 1 (npi)")
    return body.select("npi")
