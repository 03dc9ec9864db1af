"""CMS files as CMS publishes them (claims_etl/reference/cms.py, cms_csv.py, cms_zip.py, cms_release.py; issues 18
and 28): columns found by their stacked header names in the 2025 and 2026 layouts, any line ending, CMS's end-of-file
mark, footnotes and empty rows after the data; each malformed file refused whole with one ReferenceFileError naming
the file, the line and the column; the work GPCI chosen where the file has two; the release inferred from the banner
or the names. Pure: files are generated in tmp_path (claims_etl/synthetic/), never CMS's own."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from claims_etl.errors import ReferenceFileError
from claims_etl.reference import cms, cms_zip
from claims_etl.reference.cms import parse_gpci, parse_qp_list, parse_rvu, read_gpci, read_rvu
from claims_etl.reference.cms_csv import column_names
from claims_etl.reference.cms_release import Inferred, infer_release
from claims_etl.reference.cms_zip import CmsZipFiles, rvu_files_in_zip
from claims_etl.synthetic import YEARS, code_pool, write_gpci_file, write_rvu_file

RVU_FIRST_DATA_LINE = 11  # 5 banner rows, then 5 stacked header rows (the last on line 10)
RVU_HEADER_LINE = 10
GPCI_HEADER_LINE = 3  # title, an empty row, then the header row
GPCI_FIRST_DATA_LINE = 4
GPCI_ROWS = 12  # seed's LOCALITIES; footnotes and empty rows follow them
# 2026 layout positions (1-based): PRIC IND at 24 moves CONV FACTOR to 26 and the OPPS columns to 30-32.
CONV_FACTOR_2026 = 26


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    return code_pool(7, codes=100)  # with imaging (MULT PROC 4), 6, 7 and lab interpretation (PCTC 6) codes


@pytest.fixture
def rvu_file(tmp_path: Path, pool: pl.DataFrame) -> Path:
    path = tmp_path / "PPRRVU26_test.csv"
    write_rvu_file(path, pool, 2026)
    return path


@pytest.fixture
def gpci_file(tmp_path: Path) -> Path:
    path = tmp_path / "GPCI2026_test.csv"
    write_gpci_file(path, 2026, np.random.default_rng(3))
    return path


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _set_cell(path: Path, line: int, column: int, value: str) -> Path:
    """Set the 1-based `column` of the 1-based `line`."""
    rows = _rows(path)
    rows[line - 1][column - 1] = value
    return _write_rows(path, rows)


def _truncate(path: Path, line: int, columns: int) -> Path:
    rows = _rows(path)
    rows[line - 1] = rows[line - 1][:columns]
    return _write_rows(path, rows)


def _last_data_line(rows: list[list[str]], first: int) -> int:
    """The 1-based line of the last data row (seed's files: a code in the first cell)."""
    return max(index + 1 for index, row in enumerate(rows) if index + 1 >= first and row and len(row[0]) == 5)


def _insert(path: Path, line: int, row: list[str]) -> Path:
    """Insert `row` so that it becomes the 1-based `line`."""
    rows = _rows(path)
    rows.insert(line - 1, row)
    return _write_rows(path, rows)


def _refused(parse: Callable[[], object], path: Path, *fragments: str) -> str:
    """Parse, expecting one ReferenceFileError: one line, starting with the file's base name, holding every
    fragment (line and column among them); returns the message."""
    with pytest.raises(ReferenceFileError) as caught:
        parse()
    message = str(caught.value)
    assert type(caught.value) is ReferenceFileError
    assert "\n" not in message and message.startswith(f"{path.name}: ") and str(path.parent) not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _expected_rows(pool: pl.DataFrame) -> int:
    """Seed's PPRRVU rows: a global row per code, 26 where PCTC IND is 1 or 6, TC where it is 1, some 53."""
    pctc = pool.get_column("pctc_ind")
    return pool.height + int(pctc.is_in(["1", "6"]).sum()) + int((pctc == "1").sum()) + int(pool["has_53"].sum())


# ---------------------------------------------------------------- good files, both layouts


@pytest.mark.parametrize(("year", "width"), [(2025, 31), (2026, 32)])
def test_seeded_files_parse_for_their_year(tmp_path: Path, pool: pl.DataFrame, year: int, width: int) -> None:
    rvu_path, gpci_path = tmp_path / f"PPRRVU{year % 100}.csv", tmp_path / f"GPCI{year}.csv"
    write_rvu_file(rvu_path, pool, year)
    write_gpci_file(gpci_path, year, np.random.default_rng(1))
    assert rvu_path.read_bytes().count(b"\r\n") == len(_rows(rvu_path))  # CRLF, as CMS ships it
    assert len(_rows(rvu_path)[RVU_HEADER_LINE - 1]) == width
    rvu, gpci = read_rvu(rvu_path, year), parse_gpci(gpci_path, year, "floor")
    assert rvu.rows.columns == list(cms.RVU_COLUMNS) and rvu.rows.height == _expected_rows(pool)
    assert rvu.release_month == "January"
    assert rvu.rows.get_column("conv_factor").unique().to_list() == [YEARS[year]]
    assert rvu.rows.get_column("pric_ind").unique().to_list() == (["0"] if year == 2026 else [None])
    assert gpci.columns == list(cms.GPCI_COLUMNS) and gpci.height == GPCI_ROWS  # footnotes and empty rows skipped


@pytest.mark.parametrize("year", [2025, 2026])
def test_stacked_header_rows_join_into_cms_names(tmp_path: Path, pool: pl.DataFrame, year: int) -> None:
    path = tmp_path / "PPRRVU.csv"
    write_rvu_file(path, pool, year)
    names = column_names(_rows(path)[5:RVU_HEADER_LINE])
    shift = 1 if year == 2026 else 0
    assert names[:6] == ["HCPCS", "MOD", "DESCRIPTION", "STATUS CODE", "NOT USED FOR MEDICARE PAYMENT", "WORK RVU"]
    assert names[9] == "FACILITY NA INDICATOR" and names[21] == "CO- SURG" and names[22] == "TEAM SURG"
    assert names[23:25] == (["PRIC IND", "ENDO BASE"] if year == 2026 else ["ENDO BASE", "CONV FACTOR"])
    assert names[24 + shift] == "CONV FACTOR"
    assert names[25 + shift :] == [
        "PHYSICIAN SUPERVISION OF DIAGNOSTIC PROCEDURES",
        "CALCULATION FLAG",
        "DIAGNOSTIC IMAGING FAMILY INDICATOR",
        "NON-FACILITY PE USED FOR OPPS PAYMENT AMOUNT",
        "FACILITY PE USED FOR OPPS PAYMENT AMOUNT",
        "MP USED FOR OPPS PAYMENT AMOUNT",
    ]


def test_opps_columns_are_parsed_for_imaging_codes(rvu_file: Path, pool: pl.DataFrame) -> None:
    rows = parse_rvu(rvu_file, 2026)
    imaging = rows.filter(pl.col("mult_proc") == "4")
    assert imaging.height > 0 and set(imaging.get_column("diag_imaging_family")) == {"88"}
    for row in imaging.iter_rows(named=True):  # a handful of rows: the values are the point
        opps = [Decimal(row[column]) for column in cms.RVU_OPPS]
        if row["modifier"] == "26":
            assert opps == [0, 0, 0]
        else:  # the global and TC rows: OPPS PE below the PFS PE, MP used for OPPS not above MP
            assert 0 < opps[0] < Decimal(row["nonfac_pe_rvu"]) and 0 < opps[1] < Decimal(row["facility_pe_rvu"])
            assert opps[2] <= Decimal(row["mp_rvu"])
    others = rows.filter(pl.col("mult_proc") != "4").select(cms.RVU_OPPS).unique().rows()
    assert others == [("0.00", "0.00", "0.00")]
    labs = rows.filter(pl.col("pctc_ind") == "6")
    assert labs.height > 0 and set(labs.get_column("modifier")) == {"", "26"} and set(labs["status_code"]) == {"A"}


def test_missing_opps_columns_read_as_zero_and_blank_opps_cells_too(rvu_file: Path) -> None:
    rows = _rows(rvu_file)
    _write_rows(rvu_file, [row[:29] for row in rows])  # 2026: the OPPS columns are 30-32
    assert parse_rvu(rvu_file, 2026).select(cms.RVU_OPPS).unique().rows() == [("0", "0", "0")]
    _write_rows(rvu_file, rows)
    imaging = next(index + 1 for index, row in enumerate(rows) if len(row) > 18 and row[18] == "4")
    _set_cell(rvu_file, imaging, 30, "")
    assert parse_rvu(rvu_file, 2026).row(imaging - RVU_FIRST_DATA_LINE, named=True)["opps_nonfac_pe_rvu"] == "0"


LINE_ENDS = {
    "crlf": lambda text: text,
    "lf": lambda text: text.replace(b"\r\n", b"\n"),
    "cr": lambda text: text.replace(b"\r\n", b"\r"),  # RVU25C's files
    "ctrl-z": lambda text: text + b"\x1a",  # CMS's end-of-file mark
    "ctrl-z-own-line": lambda text: text + b"\x1a\r\n",
    "cr-ctrl-z": lambda text: text.replace(b"\r\n", b"\r") + b"\x1a",
    "bom": lambda text: b"\xef\xbb\xbf" + text,
}


@pytest.mark.parametrize("variant", sorted(LINE_ENDS))
def test_any_line_end_bom_and_end_of_file_mark_parse_the_same(rvu_file: Path, variant: str) -> None:
    expected = parse_rvu(rvu_file, 2026)
    rvu_file.write_bytes(LINE_ENDS[variant](rvu_file.read_bytes()))
    assert parse_rvu(rvu_file, 2026).equals(expected)
    bad = LINE_ENDS[variant](_set_cell(rvu_file, RVU_FIRST_DATA_LINE + 2, 6, "x").read_bytes())
    rvu_file.write_bytes(bad)
    _refused(lambda: parse_rvu(rvu_file, 2026), rvu_file, f"line {RVU_FIRST_DATA_LINE + 2}, column 6 (WORK RVU): 'x'")


@pytest.mark.parametrize("variant", ["crlf", "lf", "cr", "ctrl-z-own-line", "bom"])
def test_gpci_any_line_end_parses_the_same(gpci_file: Path, variant: str) -> None:
    expected = parse_gpci(gpci_file, 2026, "no-floor")
    gpci_file.write_bytes(LINE_ENDS[variant](gpci_file.read_bytes()))
    assert parse_gpci(gpci_file, 2026, "no-floor").equals(expected)


def test_trailing_spaces_in_header_cells_and_unknown_columns_are_ignored(rvu_file: Path) -> None:
    expected = parse_rvu(rvu_file, 2026)
    rows = _rows(rvu_file)
    for row in rows[5:RVU_HEADER_LINE]:
        row[:] = [f"{cell}  " if cell.strip() else cell for cell in row]
    # A column CMS might add one day, before DESCRIPTION: everything after it moves right.
    for index, row in enumerate(rows):
        row.insert(2, "FUTURE" if index == RVU_HEADER_LINE - 1 else ("9" if index >= RVU_HEADER_LINE else ""))
    parsed = parse_rvu(_write_rows(rvu_file, rows), 2026)
    assert parsed.equals(expected)


def test_a_blank_line_under_the_header_and_quoted_commas_parse(rvu_file: Path) -> None:
    rows = _rows(rvu_file)
    rows[RVU_FIRST_DATA_LINE - 1][2] = 'Office visit, "established", 20 min'
    rows.insert(RVU_FIRST_DATA_LINE - 1, [])
    parsed = parse_rvu(_write_rows(rvu_file, rows), 2026)
    assert parsed.get_column("description")[0] == 'Office visit, "established", 20 min'
    assert parsed.get_column("conv_factor").unique().to_list() == ["33.4009"]


@pytest.mark.parametrize(
    "title",
    [
        "PPRRVU26 January release",
        "National Physician Fee Schedule Relative Value File",  # no year at all: taken on trust
        "2026 National Physician Fee Schedule Relative Value File (published November 2025)",  # first year counts
        "",  # a blank first line: the title is the next non-empty line
    ],
)
def test_rvu_titles_that_fit_the_year_are_accepted(rvu_file: Path, title: str) -> None:
    assert parse_rvu(_set_cell(rvu_file, 1, 3, title), 2026).get_column("conv_factor")[0] == "33.4009"


@pytest.mark.parametrize(
    ("column", "name"),
    [(12, "nonfac_total"), (13, "facility_total"), (16, "pre_op"), (17, "intra_op"), (18, "post_op")],
)
def test_blank_totals_and_op_shares_mean_zero(rvu_file: Path, column: int, name: str) -> None:
    parsed = parse_rvu(_set_cell(rvu_file, RVU_FIRST_DATA_LINE, column, ""), 2026)
    assert parsed.row(0, named=True)[name] == "0"


def test_negative_zero_rvu_is_zero_not_negative(rvu_file: Path) -> None:
    parsed = parse_rvu(_set_cell(rvu_file, RVU_FIRST_DATA_LINE, 6, "-0.00"), 2026)
    assert parsed.row(0, named=True)["work_rvu"] == "-0.00"


# ---------------------------------------------------------------- the header: missing and ambiguous columns


@pytest.mark.parametrize(
    ("header_line", "column", "value", "name"),
    [
        (9, 6, "WERK", "WORK RVU"),  # "WERK RVU"
        (10, 2, "MODIFIER", "MOD"),
        (9, CONV_FACTOR_2026, "CF", "CONV FACTOR"),
        (9, 14, "PC/TC", "PCTC IND"),
    ],
)
def test_a_missing_needed_column_is_refused_naming_it(
    rvu_file: Path, header_line: int, column: int, value: str, name: str
) -> None:
    path = _set_cell(rvu_file, header_line, column, value)
    _refused(lambda: parse_rvu(path, 2026), path, f"line {RVU_HEADER_LINE}, header: no column named {name!r}")


def test_a_needed_column_named_twice_is_refused_as_ambiguous(rvu_file: Path) -> None:
    _set_cell(rvu_file, 9, 25, "WORK")  # ENDO BASE (2026: column 25) becomes a second WORK RVU
    path = _set_cell(rvu_file, 10, 25, "RVU")
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_HEADER_LINE}, header: 'WORK RVU' is ambiguous: columns 6 ('WORK RVU') and 25 ('WORK RVU')",
    )


def test_a_file_without_an_hcpcs_header_is_refused(rvu_file: Path) -> None:
    path = _set_cell(rvu_file, RVU_HEADER_LINE, 1, "CODE")
    _refused(lambda: parse_rvu(path, 2026), path, "not a CMS PPRRVU (RVU) file: no header row starting with 'HCPCS'")


# ---------------------------------------------------------------- footnotes and empty rows


def test_footnotes_and_empty_rows_after_the_data_are_skipped(rvu_file: Path, pool: pl.DataFrame) -> None:
    rows = _rows(rvu_file)
    last = _last_data_line(rows, RVU_FIRST_DATA_LINE)
    assert rows[last][0].startswith("*") and rows[-1] == [""] * 32  # the seed's footnotes and empty rows
    _write_rows(rvu_file, [*rows, [], ["", "", "a footnote in the third column"], *([[""] * 32] * 40)])
    assert parse_rvu(rvu_file, 2026).height == _expected_rows(pool)


@pytest.mark.parametrize(
    ("row", "kind"), [([""] * 32, "an empty row"), ([], "an empty row"), (["* note"], "a row that is not a RVU")]
)
def test_an_empty_or_footnote_row_inside_the_data_is_refused(rvu_file: Path, row: list[str], kind: str) -> None:
    path = _insert(rvu_file, RVU_FIRST_DATA_LINE + 4, row)
    _refused(lambda: parse_rvu(path, 2026), path, f"line {RVU_FIRST_DATA_LINE + 4}, {kind}", "inside the data")


def test_gpci_empty_row_inside_the_table_is_refused(gpci_file: Path) -> None:
    path = _insert(gpci_file, GPCI_FIRST_DATA_LINE + 3, [""] * 8)
    _refused(lambda: parse_gpci(path, 2026, "floor"), path, f"line {GPCI_FIRST_DATA_LINE + 3}, an empty row")


# ---------------------------------------------------------------- PPRRVU refusals (strict checks)


@pytest.mark.parametrize(
    ("columns", "missing"),
    [(1, "column 2 (MOD)"), (12, "column 13 (FACILITY TOTAL)"), (25, "column 26 (CONV FACTOR)")],
)
def test_short_rvu_row_is_refused(rvu_file: Path, columns: int, missing: str) -> None:
    path = _truncate(rvu_file, RVU_FIRST_DATA_LINE + 5, columns)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 5}, {missing}: missing: the row has {columns} columns",
        "the file's header 32",
    )


@pytest.mark.parametrize(
    ("column", "title"),
    [(6, "WORK RVU"), (7, "NON-FAC PE RVU"), (9, "FACILITY PE RVU"), (11, "MP RVU"), (26, "CONV FACTOR")],
)
def test_empty_rvu_or_conversion_factor_is_refused(rvu_file: Path, column: int, title: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 2, column, "")
    _refused(lambda: parse_rvu(path, 2026), path, f"line {RVU_FIRST_DATA_LINE + 2}, column {column} ({title}): empty")


@pytest.mark.parametrize(
    ("column", "title", "value"),
    [
        (6, "WORK RVU", "1.2.3"),
        (11, "MP RVU", "n/a"),
        (26, "CONV FACTOR", "33.40091"),  # five decimals
        (12, "NON-FACILITY TOTAL", "x"),  # blank means 0 there, text does not
        (16, "PRE OP", "ten"),
        (31, "FACILITY PE USED FOR OPPS PAYMENT AMOUNT", "1,5"),
    ],
)
def test_non_numeric_rvu_cell_is_refused(rvu_file: Path, column: int, title: str, value: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE, column, value)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE}, column {column} ({title}): {value!r} is not a number with at most 4 decimals",
    )


@pytest.mark.parametrize(
    ("column", "title"),
    [(6, "WORK RVU"), (7, "NON-FAC PE RVU"), (9, "FACILITY PE RVU"), (11, "MP RVU"), (32, "MP USED FOR OPPS")],
)
def test_negative_rvu_is_refused(rvu_file: Path, column: int, title: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 1, column, "-0.01")
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 1}, column {column} ({title}",
        "'-0.01' is negative",
    )


@pytest.mark.parametrize("value", ["0", "0.0000", "-33.4009"])
def test_conversion_factor_not_above_zero_is_refused(rvu_file: Path, value: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 3, CONV_FACTOR_2026, value)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 3}, column 26 (CONV FACTOR): {value!r} must be above 0",
    )


def test_the_first_bad_line_is_named_whatever_the_column(rvu_file: Path) -> None:
    _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 4, 6, "-1")
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 1, CONV_FACTOR_2026, "0")
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 1}, column 26 (CONV FACTOR)",
        "(2 bad cells in all)",
    )


def test_bad_hcpcs_or_status_code_is_refused(rvu_file: Path) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 1, 4, "a")
    _refused(lambda: parse_rvu(path, 2026), path, f"line {RVU_FIRST_DATA_LINE + 1}, column 4 (STATUS CODE): 'a'")


def test_duplicate_hcpcs_and_modifier_is_refused(rvu_file: Path) -> None:
    rows = _rows(rvu_file)
    first = rows[RVU_FIRST_DATA_LINE - 1]
    line = _last_data_line(rows, RVU_FIRST_DATA_LINE) + 1
    path = _insert(rvu_file, line, first)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {line}, columns 1+2 (HCPCS+MOD): {(first[0], first[1])!r} repeats the key of line {RVU_FIRST_DATA_LINE}",
    )


@pytest.mark.parametrize(
    ("title", "named"),
    [
        ("2025 National Physician Fee Schedule Relative Value File January Release", 2025),
        ("PPRRVU25 January release", 2025),
        ("PPRRVU2027_JAN", 2027),
        ("CY 1999 relative values", 1999),
    ],
)
def test_rvu_title_for_another_year_is_refused(rvu_file: Path, title: str, named: int) -> None:
    path = _set_cell(rvu_file, 1, 3, title)
    _refused(lambda: parse_rvu(path, 2026), path, "line 1, column 3 (title)", f"is for {named}, not 2026")


def test_seeded_rvu_file_of_another_year_is_refused(tmp_path: Path, pool: pl.DataFrame) -> None:
    path = tmp_path / "PPRRVU25.csv"
    write_rvu_file(path, pool, 2025)
    _refused(lambda: parse_rvu(path, 2026), path, "line 1, column 3 (title): '2025 National", "is for 2025, not 2026")


# ---------------------------------------------------------------- GPCI: the work GPCI floor choice


def test_both_work_gpci_columns_need_a_choice(gpci_file: Path) -> None:
    _refused(
        lambda: parse_gpci(gpci_file, 2026),
        gpci_file,
        f"line {GPCI_HEADER_LINE}, header: it has both '2026 PW GPCI (without 1.0 Floor)' and "
        "'2026 PW GPCI (with 1.0 Floor)'; choose one with --work-gpci floor|no-floor",
    )


def test_the_choice_picks_the_work_column(gpci_file: Path) -> None:
    floor, no_floor = read_gpci(gpci_file, 2026, "floor"), read_gpci(gpci_file, 2026, "no-floor")
    assert (floor.work_gpci, no_floor.work_gpci) == ("floor", "no-floor")
    raw = no_floor.rows.get_column("pw_gpci").cast(pl.Float64)
    floored = floor.rows.get_column("pw_gpci").cast(pl.Float64)
    assert raw.min() < 1.0 and (floored == raw.clip(lower_bound=1.0)).all()  # seed's floored value: max(1.0, raw)
    by_locality = dict(zip(no_floor.rows["locality_name"], no_floor.rows["pw_gpci"], strict=True))
    assert by_locality["Synthetic locality AK-01"] == "0.959"
    assert (
        dict(zip(floor.rows["locality_name"], floor.rows["pw_gpci"], strict=True))["Synthetic locality AK-01"]
        == "1.000"
    )
    assert floor.rows.drop("pw_gpci").equals(no_floor.rows.drop("pw_gpci"))


def test_one_work_column_must_agree_with_the_choice(tmp_path: Path) -> None:
    path = tmp_path / "GPCI2025.csv"
    write_gpci_file(path, 2025, np.random.default_rng(3))  # only "2025 PW GPCI (with 1.0 Floor)"
    assert read_gpci(path, 2025).work_gpci == "floor" and read_gpci(path, 2025, "floor").rows.height == GPCI_ROWS
    _refused(
        lambda: parse_gpci(path, 2025, "no-floor"),
        path,
        "--work-gpci no-floor, but its only work GPCI column is '2025 PW GPCI (with 1.0 Floor)'",
    )
    _set_cell(path, GPCI_HEADER_LINE, 5, "2025 PW GPCI")  # no floor wording: either choice takes it
    assert read_gpci(path, 2025, "no-floor").work_gpci is None and parse_gpci(path, 2025, "floor").height == GPCI_ROWS


def test_a_resaved_gpci_copy_loses_zeros_and_still_loads(gpci_file: Path) -> None:
    rows = _rows(gpci_file)
    for row in rows[GPCI_FIRST_DATA_LINE - 1 : GPCI_FIRST_DATA_LINE - 1 + GPCI_ROWS]:
        row[0], row[2] = str(int(row[0])), str(int(row[2]))  # MAC 2102, locality 0
    data_only = [*rows[: GPCI_FIRST_DATA_LINE - 1 + GPCI_ROWS], [""] * 8]  # and one empty row at the end
    gpci_file.write_text("\n".join(",".join(row) for row in data_only) + "\n")
    parsed = parse_gpci(gpci_file, 2026, "no-floor")
    assert ("02102", "01") in parsed.select("mac", "locality").rows() and ("03102", "00") in parsed.select(
        "mac", "locality"
    ).rows()


# ---------------------------------------------------------------- GPCI refusals


@pytest.mark.parametrize(
    ("columns", "missing"),
    [(2, "column 3 (Locality Number)"), (6, "column 7 (2026 PE GPCI)"), (7, "column 8 (2026 MP GPCI)")],
)
def test_short_gpci_row_is_refused(gpci_file: Path, columns: int, missing: str) -> None:
    path = _truncate(gpci_file, GPCI_FIRST_DATA_LINE + 1, columns)
    _refused(
        lambda: parse_gpci(path, 2026, "floor"),
        path,
        f"line {GPCI_FIRST_DATA_LINE + 1}, {missing}: missing: the row has {columns} columns",
        "the file's header 8",
    )


@pytest.mark.parametrize(("column", "title"), [(6, "PW GPCI"), (7, "PE GPCI"), (8, "MP GPCI")])
def test_empty_gpci_is_refused(gpci_file: Path, column: int, title: str) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, column, "")
    _refused(
        lambda: parse_gpci(path, 2026, "floor"), path, f"line {GPCI_FIRST_DATA_LINE}, column {column} ({title}): empty"
    )


@pytest.mark.parametrize(
    ("column", "title", "value"),
    [(6, "PW GPCI", "0"), (7, "PE GPCI", "0.000"), (8, "MP GPCI", "-0.500"), (6, "PW GPCI", "-1.000")],
)
def test_gpci_not_above_zero_is_refused(gpci_file: Path, column: int, title: str, value: str) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE + 2, column, value)
    _refused(
        lambda: parse_gpci(path, 2026, "floor"),
        path,
        f"line {GPCI_FIRST_DATA_LINE + 2}, column {column} ({title}): {value!r} must be above 0",
    )


def test_non_numeric_gpci_is_refused(gpci_file: Path) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, 7, "n/a")
    _refused(
        lambda: parse_gpci(path, 2026, "floor"),
        path,
        f"line {GPCI_FIRST_DATA_LINE}, column 7 (PE GPCI): 'n/a' is not a number with at most 4 decimals",
    )


def test_gpci_row_without_a_mac_is_refused(gpci_file: Path) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, 1, "")
    _refused(lambda: parse_gpci(path, 2026, "floor"), path, f"line {GPCI_FIRST_DATA_LINE}, column 1 (MAC): ''")


def test_gpci_without_a_pe_column_is_refused(gpci_file: Path) -> None:
    path = _set_cell(gpci_file, GPCI_HEADER_LINE, 7, "2026 XX GPCI")
    _refused(
        lambda: parse_gpci(path, 2026, "floor"), path, f"line {GPCI_HEADER_LINE}, header: no column named 'PE GPCI'"
    )


def test_duplicate_mac_and_locality_is_refused_after_zero_padding(gpci_file: Path) -> None:
    rows = _rows(gpci_file)
    first = rows[GPCI_FIRST_DATA_LINE - 1]  # 01112, CA, 05
    duplicate_line = GPCI_FIRST_DATA_LINE + GPCI_ROWS
    path = _insert(gpci_file, duplicate_line, ["1112", "CA", "5", "again", "1.000", "1.000", "1.000", "1.000"])
    assert (first[0], first[2]) == ("01112", "05")
    _refused(
        lambda: parse_gpci(path, 2026, "floor"),
        path,
        f"line {duplicate_line}, columns 1+3 (MAC+Locality Number): ('01112', '05') repeats the key of line "
        f"{GPCI_FIRST_DATA_LINE}",
    )


def test_seeded_gpci_file_of_another_year_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "GPCI2025.csv"
    write_gpci_file(path, 2025, np.random.default_rng(3))
    _refused(lambda: parse_gpci(path, 2026), path, "line 1, column 1 (title): 'ADDENDUM E. FINAL CY 2025", "not 2026")


@pytest.mark.parametrize(("column", "title"), [(6, "PW GPCI"), (7, "PE GPCI"), (8, "MP GPCI")])
def test_gpci_column_named_for_another_year_is_refused(gpci_file: Path, column: int, title: str) -> None:
    header = _rows(gpci_file)[GPCI_HEADER_LINE - 1]
    path = _set_cell(gpci_file, GPCI_HEADER_LINE, column, header[column - 1].replace("2026", "2025"))
    _refused(
        lambda: parse_gpci(path, 2026, "floor"),
        path,
        f"line {GPCI_HEADER_LINE}, column {column} ({title}): '2025 {title}",
        "is for 2025, not 2026",
    )


def test_gpci_naming_no_year_is_taken_on_trust(gpci_file: Path) -> None:
    rows = _rows(gpci_file)
    rows[0] = ["GEOGRAPHIC PRACTICE COST INDICES BY STATE AND LOCALITY"]
    rows[GPCI_HEADER_LINE - 1] = [cell.replace("2026 ", "") for cell in rows[GPCI_HEADER_LINE - 1]]
    assert parse_gpci(_write_rows(gpci_file, rows), 2026, "floor").height == GPCI_ROWS


# ---------------------------------------------------------------- the release, from the banner or the names


@pytest.mark.parametrize(
    ("month", "label", "effective"), [("April", "2026B", date(2026, 4, 1)), ("October", "2026D", date(2026, 10, 1))]
)
def test_the_banner_names_the_release(
    tmp_path: Path, pool: pl.DataFrame, month: str, label: str, effective: date
) -> None:
    path = tmp_path / "PPRRVU26.csv"
    write_rvu_file(path, pool, 2026, month=month)
    banner_month = read_rvu(path, 2026).release_month
    assert banner_month == month and cms.release_month(path) == month
    # The banner wins over the names.
    assert infer_release(2026, banner_month, path.name, "RVU26A.zip") == Inferred(
        label, effective, f"the banner of PPRRVU26.csv ({month} Release)"
    )


@pytest.mark.parametrize(
    ("rvu_name", "zip_name", "label", "effective", "source"),
    [
        ("PPRRVU25_JAN.csv", None, "2025A", date(2025, 1, 1), "the file's name PPRRVU25_JAN.csv"),
        ("PPRRVU25_APR.csv", None, "2025B", date(2025, 4, 1), "the file's name PPRRVU25_APR.csv"),
        ("PPRRVU2025_Jul.csv", None, "2025C", date(2025, 7, 1), "the file's name PPRRVU2025_Jul.csv"),
        ("PPRRVU2025_Oct.csv", None, "2025D", date(2025, 10, 1), "the file's name PPRRVU2025_Oct.csv"),
        ("PPRRVU2025_Oct.csv", "RVU25C.zip", "2025C", date(2025, 7, 1), "the zip's name RVU25C.zip"),
        ("PPRRVU25.csv", "rvu25d.zip", "2025D", date(2025, 10, 1), "the zip's name rvu25d.zip"),
        ("PPRRVU25.csv", "RVU24D.zip", "2025A", date(2025, 1, 1), "the default: the year's first release"),
        ("PPRRVU_JANUS.csv", None, "2025A", date(2025, 1, 1), "the default: the year's first release"),
    ],
)
def test_names_hint_the_release_when_the_banner_does_not(
    rvu_name: str, zip_name: str | None, label: str, effective: date, source: str
) -> None:
    assert infer_release(2025, None, rvu_name, zip_name) == Inferred(label, effective, source)


# ---------------------------------------------------------------- QP list


def test_qp_list_parses_and_refuses_bad_npis(tmp_path: Path) -> None:
    path = tmp_path / "qp.csv"
    path.write_text("npi\n1234567893\n\n 1326045678 \n")
    assert parse_qp_list(path).get_column("npi").to_list() == ["1234567893", "1326045678"]
    path.write_text("npi\r\n1234567893\r\n123456789\r\n")
    _refused(lambda: parse_qp_list(path), path, "line 3, column 1 (npi): '123456789' is not 10 digits")
    path.write_text("npi\n1234567893\n1234567893\n")
    _refused(lambda: parse_qp_list(path), path, "line 3, column 1 (npi): ('1234567893',) repeats the key of line 2")
    path.write_text("1234567893\n")
    _refused(lambda: parse_qp_list(path), path, "line 1, column 1: the header is '1234567893'")


# ---------------------------------------------------------------- the CMS RVU zip


@pytest.fixture
def members(rvu_file: Path, gpci_file: Path) -> dict[str, bytes]:
    """The bytes of a good PPRRVU and GPCI file, to put into zips under any name."""
    return {"rvu": rvu_file.read_bytes(), "gpci": gpci_file.read_bytes()}


def _zip(path: Path, contents: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


OTHER_MEMBERS = {
    "ANES2026.csv": b"anesthesia",
    "OPPSCAP_JAN.csv": b"opps",
    "OPPSCAP_JAN.txt": b"opps",
    "PPRRVU26_JAN.txt": b"the fixed-width twin",
    "RVU26A/RVU26A_README.pdf": b"%PDF",
    "26LOCCO.csv": b"locco",
    "RVU26A.pdf": b"%PDF",
    "PPRRVU26_JAN.xlsx": b"xlsx",
    "__MACOSX/._PPRRVU26_JAN.csv": b"resource fork",
}


@pytest.mark.parametrize("with_gpci", [True, False])
def test_zip_with_one_pprrvu_csv(tmp_path: Path, members: dict[str, bytes], with_gpci: bool) -> None:
    contents = {**OTHER_MEMBERS, "RVU26A/PPRRVU26_JAN.csv": members["rvu"]}
    if with_gpci:
        contents["GPCI2026.csv"] = members["gpci"]
    into = tmp_path / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", contents), into)
    assert found == CmsZipFiles(
        non_qp=into / "PPRRVU26_JAN.csv", qp=None, gpci=into / "GPCI2026.csv" if with_gpci else None
    )
    assert parse_rvu(found.non_qp, 2026).get_column("conv_factor")[0] == "33.4009"
    assert sorted(path.name for path in into.iterdir()) == sorted(
        ["PPRRVU26_JAN.csv", *(["GPCI2026.csv"] if with_gpci else [])]
    )


@pytest.mark.parametrize(
    ("non_qp", "qp"),
    [
        ("PPRRVU2026_Jan_nonQPP.csv", "PPRRVU2026_Jan_QPP.csv"),
        ("PPRRVU26_JAN_NONQPP.CSV", "PPRRVU26_JAN_QPP.CSV"),
        ("pprrvu26_non_qp.csv", "pprrvu26_qp.csv"),
    ],
)
@pytest.mark.parametrize("qp_first", [True, False])
def test_zip_with_non_qp_and_qp_files(
    tmp_path: Path, members: dict[str, bytes], non_qp: str, qp: str, qp_first: bool
) -> None:
    pair = [(qp, members["rvu"]), (non_qp, members["rvu"])]
    contents = dict(pair if qp_first else pair[::-1]) | {"GPCI2026.csv": members["gpci"]}
    into = tmp_path / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", contents), into)
    assert found == CmsZipFiles(non_qp=into / non_qp, qp=into / qp, gpci=into / "GPCI2026.csv")
    assert found.qp is not None and found.qp.read_bytes() == members["rvu"]


def test_zip_without_pprrvu_csv_is_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    path = _zip(tmp_path / "RVU26A.zip", {**OTHER_MEMBERS, "GPCI2026.csv": members["gpci"]})
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(path, tmp_path / "out")
    assert str(caught.value) == "RVU26A.zip holds no PPRRVU CSV"


@pytest.mark.parametrize(
    "names",
    [
        ["PPRRVU26_JAN.csv", "PPRRVU26_JAN_v2.csv"],  # neither says which
        ["PPRRVU26_JAN.csv", "PPRRVU26_JAN_QPP.csv"],  # one unlabelled
        ["PPRRVU26_nonQPP.csv", "PPRRVU26_QPP.csv", "PPRRVU26_extra.csv"],  # three
        ["a/PPRRVU26.csv", "b/PPRRVU26.csv"],  # the same base name twice
    ],
)
def test_ambiguous_zip_is_refused_listing_the_candidates(
    tmp_path: Path, members: dict[str, bytes], names: list[str]
) -> None:
    path = _zip(tmp_path / "RVU26A.zip", dict.fromkeys(names, members["rvu"]))
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(path, tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"RVU26A.zip holds {len(names)} PPRRVU CSVs and none is recognisably the non-QP one")
    assert all(repr(name) in message for name in names)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("names", "choose", "qp"),
    [
        (["PPRRVU26_JAN.csv", "PPRRVU26_JAN_v2.csv"], "PPRRVU26_JAN_v2.csv", None),
        (["PPRRVU26_JAN.csv", "PPRRVU26_JAN_QPP.csv"], "pprrvu26_jan.csv", "PPRRVU26_JAN_QPP.csv"),
        (["PPRRVU26_nonQPP.csv", "PPRRVU26_QPP.csv", "PPRRVU26_extra.csv"], "PPRRVU26_nonQPP.csv", "PPRRVU26_QPP.csv"),
    ],
)
def test_choose_names_the_non_qp_file(
    tmp_path: Path, members: dict[str, bytes], names: list[str], choose: str, qp: str | None
) -> None:
    into = tmp_path / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", dict.fromkeys(names, members["rvu"])), into, choose)
    chosen = next(name for name in names if name.lower() == choose.lower())
    assert found == CmsZipFiles(non_qp=into / chosen, qp=into / qp if qp else None, gpci=None)


def test_choose_that_is_not_a_candidate_is_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    path = _zip(tmp_path / "RVU26A.zip", {"PPRRVU26_A.csv": members["rvu"], "PPRRVU26_B.csv": members["rvu"]})
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(path, tmp_path / "out", choose="ANES2026.csv")
    assert str(caught.value) == (
        "RVU26A.zip: 'ANES2026.csv' is not one of its PPRRVU CSVs: 'PPRRVU26_A.csv', 'PPRRVU26_B.csv'"
    )


def test_several_gpci_files_are_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    contents = {"PPRRVU26.csv": members["rvu"], "GPCI2026.csv": members["gpci"], "GPCI2026_v2.csv": members["gpci"]}
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", contents), tmp_path / "out")
    assert str(caught.value) == "RVU26A.zip holds 2 GPCI CSVs: 'GPCI2026.csv', 'GPCI2026_v2.csv'; nothing loaded"


def test_member_names_cannot_escape_the_directory(tmp_path: Path, members: dict[str, bytes]) -> None:
    contents = {"../../PPRRVU26_slip.csv": members["rvu"], "/etc/GPCI2026.csv": members["gpci"]}
    into = tmp_path / "deep" / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", contents), into)
    assert found == CmsZipFiles(non_qp=into / "PPRRVU26_slip.csv", qp=None, gpci=into / "GPCI2026.csv")
    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert written == sorted(
        ["GPCI2026_test.csv", "PPRRVU26_test.csv", "RVU26A.zip", "deep/out/GPCI2026.csv", "deep/out/PPRRVU26_slip.csv"]
    )


def test_backslash_member_names_keep_only_the_base_name(tmp_path: Path, members: dict[str, bytes]) -> None:
    into = tmp_path / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU26A.zip", {"..\\..\\PPRRVU26.csv": members["rvu"]}), into)
    assert found.non_qp == into / "PPRRVU26.csv" and found.non_qp.read_bytes() == members["rvu"]


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path, rvu_file: Path) -> None:
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(rvu_file, tmp_path / "out")
    assert str(caught.value) == "PPRRVU26_test.csv: not a zip file, or a damaged one; nothing loaded"
    with pytest.raises(ReferenceFileError, match=r"^RVU99A\.zip: cannot read: No such file"):
        rvu_files_in_zip(tmp_path / "RVU99A.zip", tmp_path / "out")


def test_a_truncated_zip_is_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    whole = _zip(tmp_path / "whole.zip", {"PPRRVU26.csv": members["rvu"]}).read_bytes()
    cut = tmp_path / "RVU26A.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(cut, tmp_path / "out")
    assert str(caught.value) == "RVU26A.zip: not a zip file, or a damaged one; nothing loaded"


def test_a_damaged_member_is_refused_and_not_left_behind(tmp_path: Path, members: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("PPRRVU26.csv", members["rvu"])
    data = bytearray(buffer.getvalue())
    data[data.index(b"HCPCS,MOD")] ^= 0x01  # the stored bytes no longer match their CRC
    path = tmp_path / "RVU26A.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(path, tmp_path / "out")
    assert str(caught.value).startswith("RVU26A.zip: 'PPRRVU26.csv' is damaged: ")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_member_over_the_size_limit_is_refused(
    tmp_path: Path, members: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cms_zip.MAX_MEMBER_BYTES == 200 * 1024 * 1024
    monkeypatch.setattr(cms_zip, "MAX_MEMBER_BYTES", len(members["rvu"]) - 1)
    path = _zip(tmp_path / "RVU26A.zip", {"PPRRVU26.csv": members["rvu"]})
    with pytest.raises(ReferenceFileError) as caught:
        rvu_files_in_zip(path, tmp_path / "out")
    assert str(caught.value).startswith("RVU26A.zip: 'PPRRVU26.csv' is over ")
    assert "uncompressed" in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_october_zip_loads_as_downloaded(tmp_path: Path, pool: pl.DataFrame) -> None:
    """RVU25D.zip as CMS ships it: a nested folder, a mixed-case member name, CR-only line ends, Ctrl-Z."""
    rvu = tmp_path / "rvu.csv"
    write_rvu_file(rvu, pool, 2025, month="October")
    gpci = tmp_path / "gpci.csv"
    write_gpci_file(gpci, 2025, np.random.default_rng(3))
    contents = {
        **OTHER_MEMBERS,
        "RVU25D/PPRRVU2025_Oct.csv": rvu.read_bytes().replace(b"\r\n", b"\r") + b"\x1a",
        "RVU25D/gpci2025.CSV": gpci.read_bytes(),
    }
    into = tmp_path / "out"
    found = rvu_files_in_zip(_zip(tmp_path / "RVU25D.zip", contents), into)
    assert found == CmsZipFiles(non_qp=into / "PPRRVU2025_Oct.csv", qp=None, gpci=into / "gpci2025.CSV")
    parsed = read_rvu(found.non_qp, 2025)
    assert parsed.release_month == "October" and parsed.rows.height == _expected_rows(pool)
    assert infer_release(2025, parsed.release_month, found.non_qp.name, "RVU25D.zip").label == "2025D"
    assert found.gpci is not None and parse_gpci(found.gpci, 2025).height == GPCI_ROWS
