"""A CMS CSV as CMS ships it, before any layout: the bytes normalized to text, the header found and
its columns named, the rows after it as a frame of stripped text cells with their physical line numbers
(docs/spec.md §3), and the checks both layouts share (numbers, short rows, repeated keys, the title's
year). The PPRRVU and GPCI layouts on top of this are in `reference.cms`.

What CMS's files look like in the wild (../shared/CMS_LAYOUTS.md, issue 28): CRLF, LF or CR-only line
ends (RVU25C's files are CR-only), CMS's end-of-file mark (a trailing Ctrl-Z, 0x1a, sometimes on a line
of its own), a UTF-8 BOM in re-saved copies, a header stacked over several rows whose cells may carry
trailing spaces, and footnotes and runs of empty (all-comma) rows after the data.

Line numbers in messages are the original file's 1-based physical lines: CR-only and CRLF line ends
become one LF each, so normalizing never shifts them. Known limit: a quoted cell spanning lines (CMS's
files have none) would shift the numbers after it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import polars as pl

from claims_etl.errors import ReferenceFileError

# Frames scale numbers by 10^4 as integers: more decimals than that could not be priced exactly.
_DECIMAL = r"^-?(?:\d+(?:\.\d{0,4})?|\.\d{1,4})$"
# A fee schedule year in a title: a PPRRVUyy token (20yy) or a 4-digit year 19xx/20xx.
_TITLE_YEAR = re.compile(r"PPRRVU(\d{2})(?!\d)|(?<!\d)((?:19|20)\d{2})(?!\d)", re.IGNORECASE)
HEAD_LINES = 30  # the header row lies within these (PPRRVU: 5 banner and 5 header rows)
MAX_HEADER_ROWS = 5  # CMS stacks a PPRRVU column's name over 4-5 rows
_CTRL_Z = "\x1a"


_WHAT_CHARACTERS = 200  # a cell can hold megabytes: the message stays one readable line


def refusal(path: Path, line: int, where: str, what: str) -> ReferenceFileError:
    """The one-line refusal of a whole file: base name, 1-based physical line, where, what (cut short)."""
    if len(what) > _WHAT_CHARACTERS:
        what = what[: _WHAT_CHARACTERS - 1] + "…"
    return ReferenceFileError(f"{path.name}: line {line}, {where}: {what}; nothing loaded")


@dataclass(frozen=True)
class CmsCsv:
    """One file's text with LF line ends (no BOM, no trailing end-of-file mark) and its first
    `HEAD_LINES` lines as CSV cells."""

    path: Path
    text: str
    head: list[list[str]]


def normalized(data: bytes) -> str:
    """The file's text with every line end one LF, without a BOM or CMS's trailing Ctrl-Z; bytes that
    are not UTF-8 become U+FFFD (a description is never priced, a number so damaged is refused)."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n" + _CTRL_Z)


def read_cms_csv(path: Path) -> CmsCsv:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ReferenceFileError(f"{path.name}: cannot read: {error.strerror}") from None
    text = normalized(data)
    try:
        head = list(islice(csv.reader(io.StringIO(text, newline="")), HEAD_LINES))
    except csv.Error as error:
        raise ReferenceFileError(f"{path.name}: unreadable CSV: {error}") from None
    return CmsCsv(path, text, head)


def find_header(table: CmsCsv, first_cell_starts: str, what: str) -> int:
    """The 0-based index of the (last) header row: the first row whose first cell starts with
    `first_cell_starts` (any case)."""
    for index, row in enumerate(table.head):
        if row and row[0].strip().lower().startswith(first_cell_starts.lower()):
            return index
    raise ReferenceFileError(
        f"{table.path.name}: not a CMS {what} file: no header row starting with {first_cell_starts!r} "
        f"in its first {HEAD_LINES} lines"
    )


def _is_upper_header(row: list[str]) -> bool:
    """A stacked header row names columns past the third; banner rows (title, copyright, RELEASED)
    hold their text in the first three cells only."""
    return any(cell.strip() for cell in row[3:])


def header_top(table: CmsCsv, header_index: int) -> int:
    """The index of the first of the stacked header rows that end with the row at `header_index`."""
    top = header_index
    while top > 0 and header_index - top < MAX_HEADER_ROWS - 1 and _is_upper_header(table.head[top - 1]):
        top -= 1
    return top


def column_names(rows: list[list[str]]) -> list[str]:
    """Each column's name: its non-empty header cells, stripped, joined top to bottom with one space."""
    width = max(len(row) for row in rows)
    return [
        " ".join(row[position].strip() for row in rows if position < len(row) and row[position].strip())
        for position in range(width)
    ]


def name_key(name: str) -> str:
    """How names compare: any case, runs of spaces as one, and "CO- SURG" (CMS's two stacked cells
    "CO-" and "SURG") the same as "CO-SURG"."""
    return re.sub(r"-\s+", "-", " ".join(name.split())).upper()


@dataclass(frozen=True)
class Wanted:
    """A column the layout reads: its name in frames, its name for messages, how a header name is
    recognised, and whether a file without it is refused."""

    column: str
    title: str
    matches: Callable[[str], bool]
    required: bool = True


def named(column: str, title: str, *, required: bool = True) -> Wanted:
    """A column recognised by its exact CMS name (compared by `name_key`)."""
    key = name_key(title)
    return Wanted(column, title, lambda name: name_key(name) == key, required)


def find_columns(path: Path, header_line: int, names: list[str], wanted: tuple[Wanted, ...]) -> dict[str, int]:
    """The 0-based position of each wanted column found in the header: a required column that is
    missing, or any wanted column that two header columns match, refuses the file."""
    positions: dict[str, int] = {}
    for want in wanted:
        found = [position for position, name in enumerate(names) if want.matches(name)]
        if len(found) > 1:
            columns = " and ".join(f"{position + 1} ({names[position]!r})" for position in found)
            raise refusal(path, header_line, "header", f"{want.title!r} is ambiguous: columns {columns} both match it")
        if found:
            positions[want.column] = found[0]
        elif want.required:
            raise refusal(path, header_line, "header", f"no column named {want.title!r}, which pricing needs")
    return positions


def read_rows(table: CmsCsv, header_index: int, width: int) -> pl.DataFrame:
    """The rows after the header: columns ``c1``..``c<width>`` by position, cells stripped (a blank
    cell null), `file_line` (1-based), `fields`, how many cells the line really has (Polars pads a
    short row with nulls, as it reads a blank cell), and `blank`, whether every cell is empty."""
    try:
        frame = pl.read_csv(
            table.text.encode(),
            skip_rows=header_index + 1,
            has_header=False,
            # Named by position: a blank first data row must not narrow the frame to one column.
            schema={f"c{position + 1}": pl.String for position in range(width)},
            truncate_ragged_lines=True,
            quote_char='"',
        )
    except pl.exceptions.PolarsError as error:
        raise ReferenceFileError(f"{table.path.name}: unreadable CSV: {error}") from None
    lines = pl.Series("line", [table.text]).str.split("\n").explode()
    fields = lines.str.replace_all(r'"[^"]*"', "").str.count_matches(",").alias("fields") + 1
    counts = fields.to_frame().with_row_index("file_line", offset=1)
    return (
        frame.with_columns(pl.all().str.strip_chars())
        .with_columns(pl.all().replace("", None))
        .with_columns(pl.all_horizontal(pl.all().is_null()).alias("blank"))
        .with_row_index("file_line", offset=header_index + 2)
        .join(counts, on="file_line", how="left")
        .with_columns(pl.col("fields").fill_null(width))
    )


def data_rows(path: Path, rows: pl.DataFrame, is_data: pl.Expr, what: str) -> pl.DataFrame:
    """The data rows of `rows` (as from `read_rows`, with its `blank` column): rows before the first
    data row (blank lines under the header) and after the last (footnotes, runs of empty rows) are
    skipped; any other row inside the data refuses the file, naming its line."""
    marked = rows.with_columns(is_data.fill_null(value=False).alias("is_data"))
    lines = marked.filter(pl.col("is_data")).get_column("file_line")
    if lines.is_empty():
        raise ReferenceFileError(f"{path.name}: no {what} rows after the header; nothing loaded")
    first, last = lines.min(), lines.max()
    inside = marked.filter(pl.col("file_line").is_between(first, last) & ~pl.col("is_data")).head(1)
    if inside.height:
        kind = "an empty row" if inside.item(0, "blank") else f"a row that is not a {what} row"
        what_follows = f"inside the data ({what} rows follow it); empty rows and footnotes may only follow the data"
        raise refusal(path, inside.item(0, "file_line"), kind, what_follows)
    return marked.filter(pl.col("is_data")).drop("is_data", "blank")


# ---------------------------------------------------------------- checks shared by the layouts


@dataclass(frozen=True)
class Found:
    """Where a file's columns are: 0-based position and the name to show, per frame column."""

    positions: dict[str, int]
    titles: dict[str, str]

    def where(self, column: str) -> str:
        return f"column {self.positions[column] + 1} ({self.titles[column]})"


def check_title_year(path: Path, rows: list[list[str]], year: int) -> None:
    """The title (first non-empty line of `rows`), if it names a year, names `year`: the first
    PPRRVUyy token or 4-digit year in it, cell by cell."""
    for index, row in enumerate(rows):
        if not any(cell.strip() for cell in row):
            continue
        for position, cell in enumerate(row):
            found = _TITLE_YEAR.search(cell)
            if found is not None:
                year_named = 2000 + int(found[1]) if found[1] else int(found[2])
                if year_named != year:
                    where = f"column {position + 1} (title)"
                    raise refusal(path, index + 1, where, f"{cell.strip()[:80]!r} is for {year_named}, not {year}")
                return
        return


def selected(rows: pl.DataFrame, found: Found, columns: tuple[str, ...], filled: tuple[str, ...]) -> pl.DataFrame:
    """The file's rows as `columns` (a column the file lacks is null), `filled` columns with "" for
    blank, plus `file_line` and `fields`."""
    cells = [
        (pl.col(f"c{found.positions[column] + 1}") if column in found.positions else pl.lit(None, pl.String)).alias(
            column
        )
        for column in columns
    ]
    return rows.select("file_line", "fields", "blank", *cells).with_columns(pl.col(filled).fill_null(""))


def refuse_short_rows(path: Path, body: pl.DataFrame, found: Found, names: list[str]) -> None:
    width = max(found.positions.values()) + 1
    short = body.filter(pl.col("fields") < width).head(1)
    if short.height:
        line, fields = short.get_column("file_line")[0], short.get_column("fields")[0]
        raise refusal(
            path,
            line,
            f"column {fields + 1} ({names[fields]})",
            f"missing: the row has {fields} columns, the file's header {len(names)}",
        )


def check_cells(
    path: Path,
    body: pl.DataFrame,
    found: Found,
    *,
    required: tuple[str, ...],
    blank_is_zero: tuple[str, ...],
    nonnegative: tuple[str, ...],
    positive: tuple[str, ...],
) -> pl.DataFrame:
    """Refuse the file at its first bad numeric cell (by line, then column); blanks in `blank_is_zero`
    become "0". Columns the file lacks are not checked (they are all blank)."""
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
                pl.lit(found.positions.get(column, -1)).alias("position"),
                pl.lit(column).alias("column"),
                pl.col(column).alias("value"),
                pl.lit(problem).alias("problem"),
            )
            for column, condition, problem in checks
        ]
    )
    if bad.height:
        line, _, column, value, problem = bad.sort("file_line", "position").row(0)
        shown = "" if problem.startswith("empty") else f"{value!r} "
        cells = "cells" if bad.height > 1 else "cell"
        raise refusal(path, line, found.where(column), f"{shown}{problem} ({bad.height} bad {cells} in all)")
    return body.with_columns(pl.col(blank_is_zero).replace("", "0"))


def refuse_duplicates(path: Path, body: pl.DataFrame, keys: list[str], where: str) -> None:
    repeats = (
        body.with_columns(pl.col("file_line").min().over(keys).alias("first_line"))
        .filter(pl.col("file_line") != pl.col("first_line"))
        .head(1)
    )
    if repeats.height:
        row = repeats.row(0, named=True)
        key = tuple(row[k] for k in keys)
        raise refusal(path, row["file_line"], where, f"{key!r} repeats the key of line {row['first_line']}")


def key_columns(found: Found, keys: list[str]) -> str:
    positions = "+".join(str(found.positions[key] + 1) for key in keys)
    return f"{'columns' if len(keys) > 1 else 'column'} {positions} ({'+'.join(found.titles[key] for key in keys)})"
