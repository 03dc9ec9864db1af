"""CMS Physician Fee Schedule files as CMS publishes them: the PPRRVU and GPCI CSV layouts
(docs/spec.md §3), checked and parsed into frames of exact scaled integers. A malformed file is
refused whole with a `ReferenceFileError`; nothing here touches a database.
"""

from __future__ import annotations

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
RVU_NUMERIC = (
    "work_rvu",
    "nonfac_pe_rvu",
    "facility_pe_rvu",
    "mp_rvu",
    "nonfac_total",
    "facility_total",
    "pre_op",
    "intra_op",
    "post_op",
    "conv_factor",
)
GPCI_HEADER_PREFIXES = ("Medicare Administrative Contractor", "State", "Locality Number", "Locality Name")
GPCI_HEADER_CONTAINS = ("PW GPCI", "PE GPCI", "MP GPCI")
GPCI_COLUMNS = ("mac", "state", "locality", "locality_name", "pw_gpci", "pe_gpci", "mp_gpci")
GPCI_NUMERIC = ("pw_gpci", "pe_gpci", "mp_gpci")
HEADER_SEARCH_LINES = 20
# Frames scale numbers by 10^4 as integers: more decimals than that could not be priced exactly.
_DECIMAL = r"^-?(?:\d+(?:\.\d{0,4})?|\.\d{1,4})$"


def _read_cells(path: Path) -> list[list[str]]:
    """The file's first lines as CSV cells, to find and check the header row."""
    import csv  # noqa: PLC0415

    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            return [row for _, row in zip(range(HEADER_SEARCH_LINES), csv.reader(handle), strict=False)]
    except OSError as error:
        raise ReferenceFileError(f"{path.name}: cannot read: {error.strerror}") from None


def _find_header(path: Path, rows: list[list[str]], first_cell_matches: str, what: str) -> int:
    for index, row in enumerate(rows):
        if row and row[0].strip().lower().startswith(first_cell_matches.lower()):
            return index
    raise ReferenceFileError(
        f"{path.name}: not a CMS {what} file: no header row starting with {first_cell_matches!r} "
        f"in its first {HEADER_SEARCH_LINES} lines"
    )


def _read_body(path: Path, header_index: int, width: int, names: tuple[str, ...]) -> pl.DataFrame:
    """Rows after the header, every cell a string, the first `width` columns named by position."""
    try:
        frame = pl.read_csv(
            path,
            skip_rows=header_index + 1,
            has_header=False,
            infer_schema=False,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            quote_char='"',
        )
    except (pl.exceptions.PolarsError, OSError) as error:
        raise ReferenceFileError(f"{path.name}: unreadable CSV: {error}") from None
    if frame.width < width:
        raise ReferenceFileError(f"{path.name}: data rows have {frame.width} columns, need {width}")
    frame = frame.select(frame.columns[:width]).rename(dict(zip(frame.columns[:width], names, strict=True)))
    stripped = frame.with_columns(pl.all().str.strip_chars())
    return stripped.with_row_index("file_line", offset=header_index + 2)


def _check_numbers(path: Path, frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Blank numeric cells mean 0; any other non-number refuses the file, naming the first bad cell."""
    frame = frame.with_columns(pl.col(columns).fill_null("").replace("", "0"))
    for column in columns:
        bad = frame.filter(~pl.col(column).str.contains(_DECIMAL))
        if bad.height:
            line, value = bad.row(0)[0], bad.get_column(column)[0]
            raise ReferenceFileError(
                f"{path.name}: line {line}, column {column}: {value!r} is not a number with at most "
                f"4 decimals ({bad.height} bad cells); nothing loaded"
            )
    return frame


def _refuse_duplicates(path: Path, frame: pl.DataFrame, keys: list[str]) -> None:
    duplicated = frame.filter(pl.struct(keys).is_duplicated())
    if duplicated.height:
        raise ReferenceFileError(
            f"{path.name}: {duplicated.height} rows repeat a key {keys} (first at line "
            f"{duplicated.get_column('file_line')[0]}); nothing loaded"
        )


def parse_rvu(path: Path) -> pl.DataFrame:
    """A PPRRVU CSV as published: checked header, one row per HCPCS and modifier, cells as text."""
    rows = _read_cells(path)
    header_index = _find_header(path, rows, "HCPCS", "PPRRVU (RVU)")
    header = [cell.strip().upper() for cell in rows[header_index]]
    for position, expected in enumerate(RVU_HEADER):
        found = header[position] if position < len(header) else "<missing>"
        if found != expected:
            raise ReferenceFileError(
                f"{path.name}: header column {position + 1} is {found!r}, CMS's PPRRVU layout has "
                f"{expected!r} there; nothing loaded"
            )
    body = _read_body(path, header_index, len(RVU_HEADER), RVU_COLUMNS)
    body = body.filter(pl.col("hcpcs").fill_null("") != "").with_columns(pl.col("modifier").fill_null(""))
    body = _check_numbers(path, body, RVU_NUMERIC)
    bad_codes = body.filter(
        ~pl.col("hcpcs").str.contains(r"^[A-Z0-9]{5}$")
        | ~pl.col("status_code").str.contains(r"^[A-Z]$").fill_null(False)
    )
    if bad_codes.height:
        raise ReferenceFileError(
            f"{path.name}: line {bad_codes.get_column('file_line')[0]}: HCPCS must be 5 letters or digits "
            "and STATUS CODE one letter; nothing loaded"
        )
    _refuse_duplicates(path, body, ["hcpcs", "modifier"])
    if body.height == 0:
        raise ReferenceFileError(f"{path.name}: no RVU rows after the header; nothing loaded")
    return body.drop("file_line")


def parse_gpci(path: Path) -> pl.DataFrame:
    """A CMS GPCI CSV as published: checked header, MAC and locality zero-padded, cells as text."""
    rows = _read_cells(path)
    header_index = _find_header(path, rows, GPCI_HEADER_PREFIXES[0], "GPCI")
    header = [cell.strip() for cell in rows[header_index]]
    expected = [*GPCI_HEADER_PREFIXES, *GPCI_HEADER_CONTAINS]
    for position, fragment in enumerate(expected):
        found = header[position] if position < len(header) else "<missing>"
        fits = found.startswith(fragment) if position < 4 else fragment.lower() in found.lower()
        if not fits:
            raise ReferenceFileError(
                f"{path.name}: header column {position + 1} is {found!r}, CMS's GPCI layout has "
                f"{fragment!r} there; nothing loaded"
            )
    body = _read_body(path, header_index, len(GPCI_COLUMNS), GPCI_COLUMNS)
    # Blank lines and footnotes under the table carry no numbers: they are not data rows.
    body = body.filter(pl.any_horizontal(pl.col(GPCI_NUMERIC).fill_null("") != ""))
    body = _check_numbers(path, body, GPCI_NUMERIC).with_columns(
        pl.col("mac").str.zfill(5), pl.col("locality").str.zfill(2)
    )
    bad_keys = body.filter(~pl.col("mac").str.contains(r"^\d{5}$") | ~pl.col("locality").str.contains(r"^\d{2}$"))
    if bad_keys.height:
        raise ReferenceFileError(
            f"{path.name}: line {bad_keys.get_column('file_line')[0]}: MAC must be 5 digits and the "
            "locality number 2 digits; nothing loaded"
        )
    _refuse_duplicates(path, body, ["mac", "locality"])
    if body.height == 0:
        raise ReferenceFileError(f"{path.name}: no GPCI rows after the header; nothing loaded")
    return body.drop("file_line")
