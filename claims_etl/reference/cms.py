"""CMS Physician Fee Schedule files as CMS publishes them: the PPRRVU and GPCI CSV layouts
(docs/spec.md §3), checked and parsed into frames of cells as text (the RVU zip CMS ships them in is
read by `reference.cms_zip`). A malformed file is refused whole with one `ReferenceFileError` whose message is
one line naming the file (base name), the 1-based file line and the column; nothing here touches a
database.

What a file is refused for (issue 18, item 5), checked over the whole frame with Polars expressions:

- a header row that does not fit the layout (columns by position, spec §3);
- a data row with fewer columns than the layout uses (PPRRVU 25, GPCI 7): a truncated row would
  otherwise read as blanks. A PPRRVU data row is a row with a HCPCS cell; a GPCI data row one whose
  MAC cell is digits or that has any GPCI cell (blank lines and footnotes under the GPCI table are not
  data rows);
- a numeric cell that is not a decimal with at most 4 places (frames are later scaled by 10^4);
- per numeric column, what a blank cell means. Spec §3 says "blank numeric cells mean 0"; that holds
  only where pricing (spec §4) does not use the number, because a blank there would price at $0:

  ==========================  =============================  ==========================
  column                      blank                          other value refused
  ==========================  =============================  ==========================
  6 WORK RVU                  refused                        negative
  7 NON-FAC PE RVU            refused                        negative
  9 FACILITY PE RVU           refused                        negative
  11 MP RVU                   refused                        negative
  25 CONV FACTOR              refused                        zero or negative
  12 NON-FACILITY TOTAL       0 (spec §3)                    (format only)
  13 FACILITY TOTAL           0 (spec §3)                    (format only)
  16 PRE OP, 17 INTRA OP,     0 (spec §3)                    (format only)
  18 POST OP
  GPCI PW, PE, MP GPCI        refused                        zero or negative
  ==========================  =============================  ==========================

  (``-0.00`` is zero, not negative.)
- a repeated key: HCPCS+MOD in a PPRRVU file, MAC+locality (after zero-padding) in a GPCI file;
- a year other than the one asked for (`parse_rvu(path, year)`, `parse_gpci(path, year)`). The title
  line is the first non-empty line above the header row; its year is the first ``PPRRVUyy`` token
  (20yy) or 4-digit year 19xx/20xx in it, so a later date in the title (a publication date) is not
  read as the fee schedule year. In a GPCI file every 4-digit year in the PW/PE/MP GPCI column names
  (``2026 PW GPCI (with 1.0 Floor)``) must be the year too. A file that names no year at all is
  accepted: the year asked for is then taken on trust.

Known limit: lines are numbered as physical lines, so a quoted cell spanning lines (CMS's files have
none) would shift the line numbers and the column counts after it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import polars as pl

from claims_etl.errors import ReferenceFileError

# docs/spec.md §3: the PPRRVU header row's cells, columns 1-25, by position (the lower halves of CMS's
# two-line header). A file whose header differs is refused whole.
RVU_HEADER = (
    "HCPCS",
    "MOD",
    "DESCRIPTION",
    "CODE",
    "PAYMENT",
    "RVU",
    "PE RVU",
    "INDICATOR",
    "PE RVU",
    "INDICATOR",
    "RVU",
    "TOTAL",
    "TOTAL",
    "IND",
    "DAYS",
    "OP",
    "OP",
    "OP",
    "PROC",
    "SURG",
    "SURG",
    "SURG",
    "SURG",
    "BASE",
    "FACTOR",
)
# The columns' names in the spec (both header lines), for messages.
RVU_TITLES = (
    "HCPCS",
    "MOD",
    "DESCRIPTION",
    "STATUS CODE",
    "NOT USED FOR MEDICARE PAYMENT",
    "WORK RVU",
    "NON-FAC PE RVU",
    "NON-FAC NA INDICATOR",
    "FACILITY PE RVU",
    "FACILITY NA INDICATOR",
    "MP RVU",
    "NON-FACILITY TOTAL",
    "FACILITY TOTAL",
    "PCTC IND",
    "GLOB DAYS",
    "PRE OP",
    "INTRA OP",
    "POST OP",
    "MULT PROC",
    "BILAT SURG",
    "ASST SURG",
    "CO-SURG",
    "TEAM SURG",
    "ENDO BASE",
    "CONV FACTOR",
)
RVU_COLUMNS = (
    "hcpcs",
    "modifier",
    "description",
    "status_code",
    "not_used_for_medicare",
    "work_rvu",
    "nonfac_pe_rvu",
    "nonfac_na_indicator",
    "facility_pe_rvu",
    "facility_na_indicator",
    "mp_rvu",
    "nonfac_total",
    "facility_total",
    "pctc_ind",
    "glob_days",
    "pre_op",
    "intra_op",
    "post_op",
    "mult_proc",
    "bilat_surg",
    "asst_surg",
    "co_surg",
    "team_surg",
    "endo_base",
    "conv_factor",
)
# Numeric columns pricing needs (spec §4): present, a number, never negative (the CF above 0).
RVU_RVUS = ("work_rvu", "nonfac_pe_rvu", "facility_pe_rvu", "mp_rvu")
RVU_REQUIRED = (*RVU_RVUS, "conv_factor")
# Numeric columns pricing does not use: blank means 0 (spec §3).
RVU_BLANK_IS_ZERO = ("nonfac_total", "facility_total", "pre_op", "intra_op", "post_op")
RVU_NUMERIC = (*RVU_REQUIRED, *RVU_BLANK_IS_ZERO)
GPCI_HEADER_PREFIXES = ("Medicare Administrative Contractor", "State", "Locality Number", "Locality Name")
GPCI_HEADER_CONTAINS = ("PW GPCI", "PE GPCI", "MP GPCI")
GPCI_TITLES = ("MAC", "State", "Locality Number", "Locality Name", "PW GPCI", "PE GPCI", "MP GPCI")
GPCI_COLUMNS = ("mac", "state", "locality", "locality_name", "pw_gpci", "pe_gpci", "mp_gpci")
GPCI_NUMERIC = ("pw_gpci", "pe_gpci", "mp_gpci")
HEADER_SEARCH_LINES = 20
# Frames scale numbers by 10^4 as integers: more decimals than that could not be priced exactly.
_DECIMAL = r"^-?(?:\d+(?:\.\d{0,4})?|\.\d{1,4})$"
# A fee schedule year in a title: a PPRRVUyy token (20yy) or a 4-digit year 19xx/20xx.
_TITLE_YEAR = re.compile(r"PPRRVU(\d{2})(?!\d)|(?<!\d)((?:19|20)\d{2})(?!\d)", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
# Members of a CMS RVU zip larger than this (uncompressed) are refused: a PPRRVU CSV is ~5 MB.


@dataclass(frozen=True)
class _Layout:
    name: str
    columns: tuple[str, ...]
    titles: tuple[str, ...]

    def column(self, column: str) -> str:
        position = self.columns.index(column)
        return f"column {position + 1} ({self.titles[position]})"


_RVU = _Layout("PPRRVU", RVU_COLUMNS, RVU_TITLES)
_GPCI = _Layout("GPCI", GPCI_COLUMNS, GPCI_TITLES)


def _refusal(path: Path, line: int, where: str, what: str) -> ReferenceFileError:
    return ReferenceFileError(f"{path.name}: line {line}, {where}: {what}; nothing loaded")


def _read(path: Path) -> tuple[bytes, list[list[str]]]:
    """The file's bytes, and its first lines as CSV cells (to find and check the header row)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ReferenceFileError(f"{path.name}: cannot read: {error.strerror}") from None
    head = data[: 1 << 20].decode("utf-8", errors="replace").removeprefix("\ufeff")
    try:
        rows = list(islice(csv.reader(io.StringIO(head, newline="")), HEADER_SEARCH_LINES))
    except csv.Error as error:
        raise ReferenceFileError(f"{path.name}: unreadable CSV: {error}") from None
    return data, rows


def _find_header(path: Path, rows: list[list[str]], first_cell_matches: str, what: str) -> int:
    for index, row in enumerate(rows):
        if row and row[0].strip().lower().startswith(first_cell_matches.lower()):
            return index
    raise ReferenceFileError(
        f"{path.name}: not a CMS {what} file: no header row starting with {first_cell_matches!r} "
        f"in its first {HEADER_SEARCH_LINES} lines"
    )


def _check_title_year(path: Path, rows: list[list[str]], header_index: int, year: int) -> None:
    """The title (first non-empty line above the header row), if it names a year, names `year`: the
    first PPRRVUyy token or 4-digit year in it, cell by cell."""
    for index, row in enumerate(rows[:header_index]):
        if not any(cell.strip() for cell in row):
            continue
        for position, cell in enumerate(row):
            found = _TITLE_YEAR.search(cell)
            if found is not None:
                named = 2000 + int(found[1]) if found[1] else int(found[2])
                if named != year:
                    raise _refusal(
                        path,
                        index + 1,
                        f"column {position + 1} (title)",
                        f"{cell.strip()[:80]!r} is for {named}, not {year}",
                    )
                return
        return


def _check_header(
    path: Path, header_index: int, header: list[str], what: str, expected: list[tuple[str, bool]]
) -> None:
    """`expected`: per position, the layout's name for the column and whether the header fits it."""
    for position, (name, fits) in enumerate(expected):
        if not fits:
            found = header[position] if position < len(header) else "<missing>"
            raise ReferenceFileError(
                f"{path.name}: line {header_index + 1}, header column {position + 1} is {found!r}, CMS's "
                f"{what} layout has {name!r} there; nothing loaded"
            )


def _read_body(path: Path, data: bytes, header_index: int, layout: _Layout, checked: tuple[str, ...]) -> pl.DataFrame:
    """Rows after the header: the layout's columns by position, every cell stripped text (a blank
    cell null as before, or "" in the `checked` columns), `file_line` (1-based) and `fields`, how many
    columns the line really has."""
    width = len(layout.columns)
    try:
        frame = pl.read_csv(
            data,
            skip_rows=header_index + 1,
            has_header=False,
            # Named by position: a blank first data row must not narrow the frame to one column.
            schema=dict.fromkeys(layout.columns, pl.String),
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            quote_char='"',
        )
    except pl.exceptions.PolarsError as error:
        raise ReferenceFileError(f"{path.name}: unreadable CSV: {error}") from None
    # Polars pads a short row with nulls, as it reads a blank cell: count each physical line's
    # separators outside quotes to tell them apart.
    lines = pl.Series("line", [data.decode("utf-8", errors="replace")]).str.split("\n").explode()
    fields = lines.str.strip_suffix("\r").str.replace_all(r'"[^"]*"', "").str.count_matches(",").alias("fields") + 1
    counts = fields.to_frame().with_row_index("file_line", offset=1)
    return (
        frame.with_columns(pl.all().str.strip_chars())
        .with_columns(pl.col(checked).fill_null(""))
        .with_row_index("file_line", offset=header_index + 2)
        .join(counts, on="file_line", how="left")
        .with_columns(pl.col("fields").fill_null(width))
    )


def _refuse_short_rows(path: Path, body: pl.DataFrame, layout: _Layout) -> None:
    width = len(layout.columns)
    short = body.filter(pl.col("fields") < width).head(1)
    if short.height:
        line, fields = short.get_column("file_line")[0], short.get_column("fields")[0]
        raise _refusal(
            path,
            line,
            f"column {fields + 1} ({layout.titles[fields]})",
            f"missing: the row has {fields} columns, CMS's {layout.name} layout has {width}",
        )


def _check_cells(
    path: Path,
    body: pl.DataFrame,
    layout: _Layout,
    *,
    required: tuple[str, ...],
    blank_is_zero: tuple[str, ...],
    nonnegative: tuple[str, ...],
    positive: tuple[str, ...],
) -> pl.DataFrame:
    """Refuse the file at its first bad numeric cell (by line, then column); blanks in `blank_is_zero`
    become "0"."""
    checks: list[tuple[str, pl.Expr, str]] = []
    for column in (*required, *blank_is_zero):
        cell = pl.col(column)
        number = cell.str.contains(_DECIMAL)
        if column in required:
            checks.append((column, cell == "", "empty, CMS's layout needs a number there"))
        checks.append((column, (cell != "") & ~number, "is not a number with at most 4 decimals"))
        if column in nonnegative:
            checks.append((column, number & cell.str.starts_with("-") & cell.str.contains("[1-9]"), "is negative"))
        if column in positive:
            not_positive = number & (cell.str.starts_with("-") | ~cell.str.contains("[1-9]"))
            checks.append((column, not_positive, "must be above 0"))
    bad = pl.concat(
        [
            body.filter(condition).select(
                "file_line",
                pl.lit(layout.columns.index(column)).alias("position"),
                pl.col(column).alias("value"),
                pl.lit(problem).alias("problem"),
            )
            for column, condition, problem in checks
        ]
    )
    if bad.height:
        line, position, value, problem = bad.sort("file_line", "position").row(0)
        shown = "" if problem.startswith("empty") else f"{value!r} "
        cells = "cells" if bad.height > 1 else "cell"
        raise _refusal(
            path, line, layout.column(layout.columns[position]), f"{shown}{problem} ({bad.height} bad {cells} in all)"
        )
    return body.with_columns(pl.col(blank_is_zero).replace("", "0")) if blank_is_zero else body


def _refuse_duplicates(path: Path, body: pl.DataFrame, layout: _Layout, keys: list[str]) -> None:
    repeats = (
        body.with_columns(pl.col("file_line").min().over(keys).alias("first_line"))
        .filter(pl.col("file_line") != pl.col("first_line"))
        .head(1)
    )
    if repeats.height:
        row = repeats.row(0, named=True)
        positions = "+".join(str(layout.columns.index(key) + 1) for key in keys)
        titles = "+".join(layout.titles[layout.columns.index(key)] for key in keys)
        key = tuple(row[k] for k in keys)
        raise _refusal(
            path,
            row["file_line"],
            f"{'columns' if len(keys) > 1 else 'column'} {positions} ({titles})",
            f"{key!r} repeats the key of line {row['first_line']}",
        )


def parse_rvu(path: Path, year: int) -> pl.DataFrame:
    """A PPRRVU CSV as published for fee schedule `year`: checked header, title year and cells (module
    docstring), one row per HCPCS and modifier, cells as text (blank totals and op shares as "0")."""
    data, rows = _read(path)
    header_index = _find_header(path, rows, "HCPCS", "PPRRVU (RVU)")
    header = [cell.strip().upper() for cell in rows[header_index]]
    expected = [(name, position < len(header) and header[position] == name) for position, name in enumerate(RVU_HEADER)]
    _check_header(path, header_index, header, "PPRRVU", expected)
    _check_title_year(path, rows, header_index, year)
    body = _read_body(path, data, header_index, _RVU, ("hcpcs", "modifier", "status_code", *RVU_NUMERIC))
    body = body.filter(pl.col("hcpcs") != "")
    _refuse_short_rows(path, body, _RVU)
    body = _check_cells(
        path,
        body,
        _RVU,
        required=RVU_REQUIRED,
        blank_is_zero=RVU_BLANK_IS_ZERO,
        nonnegative=RVU_RVUS,
        positive=("conv_factor",),
    )
    bad_codes = body.filter(
        ~pl.col("hcpcs").str.contains(r"^[A-Z0-9]{5}$") | ~pl.col("status_code").str.contains(r"^[A-Z]$")
    )
    if bad_codes.height:
        row = bad_codes.row(0, named=True)
        bad_hcpcs = not re.fullmatch(r"[A-Z0-9]{5}", row["hcpcs"])
        raise _refusal(
            path,
            row["file_line"],
            _RVU.column("hcpcs" if bad_hcpcs else "status_code"),
            f"{row['hcpcs' if bad_hcpcs else 'status_code']!r}: HCPCS must be 5 letters or digits and "
            "STATUS CODE one letter",
        )
    _refuse_duplicates(path, body, _RVU, ["hcpcs", "modifier"])
    if body.height == 0:
        raise ReferenceFileError(f"{path.name}: no RVU rows after the header; nothing loaded")
    return body.drop("file_line", "fields")


def parse_gpci(path: Path, year: int) -> pl.DataFrame:
    """A CMS GPCI CSV as published for fee schedule `year`: checked header, title and column years
    and cells (module docstring), MAC and locality zero-padded, cells as text."""
    data, rows = _read(path)
    header_index = _find_header(path, rows, GPCI_HEADER_PREFIXES[0], "GPCI")
    header = [cell.strip() for cell in rows[header_index]]
    expected = [
        (
            fragment,
            position < len(header)
            and (
                header[position].startswith(fragment) if position < 4 else fragment.lower() in header[position].lower()
            ),
        )
        for position, fragment in enumerate([*GPCI_HEADER_PREFIXES, *GPCI_HEADER_CONTAINS])
    ]
    _check_header(path, header_index, header, "GPCI", expected)
    _check_title_year(path, rows, header_index, year)
    for column in GPCI_NUMERIC:
        position = GPCI_COLUMNS.index(column)
        named = [int(found) for found in _YEAR.findall(header[position])]
        if any(found != year for found in named):
            other = next(found for found in named if found != year)
            raise _refusal(
                path,
                header_index + 1,
                _GPCI.column(column),
                f"{header[position]!r} is for {other}, not {year}",
            )
    body = _read_body(path, data, header_index, _GPCI, ("mac", "locality", *GPCI_NUMERIC))
    # Blank lines and footnotes under the table are not data rows: no digits for a MAC, no GPCI.
    body = body.filter(pl.col("mac").str.contains(r"^\d+$") | pl.any_horizontal(pl.col(GPCI_NUMERIC) != ""))
    _refuse_short_rows(path, body, _GPCI)
    body = _check_cells(
        path, body, _GPCI, required=GPCI_NUMERIC, blank_is_zero=(), nonnegative=(), positive=GPCI_NUMERIC
    )
    bad_keys = body.filter(~pl.col("mac").str.contains(r"^\d{1,5}$") | ~pl.col("locality").str.contains(r"^\d{1,2}$"))
    if bad_keys.height:
        row = bad_keys.row(0, named=True)
        column = "mac" if not re.fullmatch(r"\d{1,5}", row["mac"]) else "locality"
        raise _refusal(
            path,
            row["file_line"],
            _GPCI.column(column),
            f"{row[column]!r}: MAC must be 5 digits and the locality number 2 digits",
        )
    body = body.with_columns(pl.col("mac").str.zfill(5), pl.col("locality").str.zfill(2))
    _refuse_duplicates(path, body, _GPCI, ["mac", "locality"])
    if body.height == 0:
        raise ReferenceFileError(f"{path.name}: no GPCI rows after the header; nothing loaded")
    return body.drop("file_line", "fields")


def parse_qp_list(path: Path) -> pl.DataFrame:
    """A QP list: a CSV whose first line is the header ``npi``, then one NPI a line (blank lines
    skipped). Refused whole, naming the line, for a missing header, an NPI that is not 10 digits, or
    a repeated NPI. Returns one column, ``npi`` (text)."""
    data, rows = _read(path)
    first = rows[0][0].strip().lower() if rows and rows[0] else ""
    if first != "npi":
        raise _refusal(path, 1, "column 1", f"the header is {first!r}, a QP list's is 'npi'")
    try:
        frame = pl.read_csv(
            data,
            skip_rows=1,
            has_header=False,
            schema={"npi": pl.String},
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError as error:
        raise ReferenceFileError(f"{path.name}: unreadable CSV: {error}") from None
    body = (
        frame.with_columns(pl.col("npi").str.strip_chars().fill_null(""))
        .with_row_index("file_line", offset=2)
        .filter(pl.col("npi") != "")
    )
    bad = body.filter(~pl.col("npi").str.contains(r"^\d{10}$")).head(1)
    if bad.height:
        raise _refusal(path, bad.item(0, "file_line"), "column 1 (npi)", f"{bad.item(0, 'npi')!r} is not 10 digits")
    qp = _Layout("QP list", ("npi",), ("npi",))
    _refuse_duplicates(path, body, qp, ["npi"])
    return body.select("npi")


# ---------------------------------------------------------------- the CMS RVU zip (RVU26A.zip, ...)
