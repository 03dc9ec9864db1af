"""Strict checks of CMS files and the CMS RVU zip (claims_etl/reference/cms.py and cms_zip.py, issue 18 items 2 and 5):
each malformed file is refused whole with one ReferenceFileError naming the file, the line and the column;
seeded files (claims_etl/dev/seed.py) still parse for their year. Pure: files are written to tmp_path."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from claims_etl.dev.seed import YEARS, code_pool, write_gpci_file, write_rvu_file
from claims_etl.errors import ReferenceFileError
from claims_etl.reference import cms, cms_zip
from claims_etl.reference.cms import parse_gpci, parse_qp_list, parse_rvu
from claims_etl.reference.cms_zip import CmsZipFiles, rvu_files_in_zip

RVU_FIRST_DATA_LINE = 11  # seed writes 9 preamble lines, then the header row (line 10)
GPCI_HEADER_LINE = 3  # title, a blank line, then the header row
GPCI_FIRST_DATA_LINE = 4
GPCI_ROWS = 12  # seed's LOCALITIES; a blank line and a footnote follow them


@pytest.fixture(scope="module")
def pool() -> pl.DataFrame:
    return code_pool(7, codes=40)


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


# ---------------------------------------------------------------- good files


@pytest.mark.parametrize("year", sorted(YEARS))
def test_seeded_files_parse_for_their_year(tmp_path: Path, pool: pl.DataFrame, year: int) -> None:
    rvu_path, gpci_path = tmp_path / f"PPRRVU{year % 100}.csv", tmp_path / f"GPCI{year}.csv"
    write_rvu_file(rvu_path, pool, year)
    write_gpci_file(gpci_path, year, np.random.default_rng(1))
    rvu, gpci = parse_rvu(rvu_path, year), parse_gpci(gpci_path, year)
    assert rvu.columns == list(cms.RVU_COLUMNS) and rvu.height == len(_rows(rvu_path)) - 10
    assert rvu.get_column("conv_factor").unique().to_list() == [YEARS[year]]
    assert gpci.columns == list(cms.GPCI_COLUMNS) and gpci.height == GPCI_ROWS  # footnote and blank skipped


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
    assert parse_rvu(_set_cell(rvu_file, 1, 1, title), 2026).get_column("conv_factor")[0] == "33.4009"


def test_quoted_commas_and_a_blank_line_after_the_header_parse(rvu_file: Path) -> None:
    rows = _rows(rvu_file)
    rows[RVU_FIRST_DATA_LINE - 1][2] = 'Office visit, "established", 20 min'
    rows.insert(RVU_FIRST_DATA_LINE - 1, [])
    parsed = parse_rvu(_write_rows(rvu_file, rows), 2026)
    assert parsed.height == len(rows) - 11
    assert parsed.get_column("description")[0] == 'Office visit, "established", 20 min'
    assert parsed.get_column("conv_factor").unique().to_list() == ["33.4009"]


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


# ---------------------------------------------------------------- PPRRVU refusals


@pytest.mark.parametrize(
    ("columns", "missing"), [(1, "column 2 (MOD)"), (12, "column 13 (FACILITY TOTAL)"), (24, "column 25 (CONV FACTOR)")]
)
def test_short_rvu_row_is_refused(rvu_file: Path, columns: int, missing: str) -> None:
    path = _truncate(rvu_file, RVU_FIRST_DATA_LINE + 5, columns)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 5}, {missing}: missing: the row has {columns} columns",
        "layout has 25",
    )


@pytest.mark.parametrize(
    ("column", "title"),
    [(6, "WORK RVU"), (7, "NON-FAC PE RVU"), (9, "FACILITY PE RVU"), (11, "MP RVU"), (25, "CONV FACTOR")],
)
def test_empty_rvu_or_conversion_factor_is_refused(rvu_file: Path, column: int, title: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 2, column, "")
    _refused(lambda: parse_rvu(path, 2026), path, f"line {RVU_FIRST_DATA_LINE + 2}, column {column} ({title}): empty")


@pytest.mark.parametrize(
    ("column", "title", "value"),
    [
        (6, "WORK RVU", "1.2.3"),
        (11, "MP RVU", "n/a"),
        (25, "CONV FACTOR", "33.40091"),  # five decimals
        (12, "NON-FACILITY TOTAL", "x"),  # blank means 0 there, text does not
        (16, "PRE OP", "ten"),
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
    ("column", "title"), [(6, "WORK RVU"), (7, "NON-FAC PE RVU"), (9, "FACILITY PE RVU"), (11, "MP RVU")]
)
def test_negative_rvu_is_refused(rvu_file: Path, column: int, title: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 1, column, "-0.01")
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 1}, column {column} ({title}): '-0.01' is negative",
    )


@pytest.mark.parametrize("value", ["0", "0.0000", "-33.4009"])
def test_conversion_factor_not_above_zero_is_refused(rvu_file: Path, value: str) -> None:
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 3, 25, value)
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 3}, column 25 (CONV FACTOR): {value!r} must be above 0",
    )


def test_the_first_bad_line_is_named_whatever_the_column(rvu_file: Path) -> None:
    _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 4, 6, "-1")
    path = _set_cell(rvu_file, RVU_FIRST_DATA_LINE + 1, 25, "0")
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {RVU_FIRST_DATA_LINE + 1}, column 25 (CONV FACTOR)",
        "(2 bad cells in all)",
    )


def test_duplicate_hcpcs_and_modifier_is_refused(rvu_file: Path) -> None:
    rows = _rows(rvu_file)
    first = rows[RVU_FIRST_DATA_LINE - 1]
    path = _write_rows(rvu_file, [*rows, first])
    _refused(
        lambda: parse_rvu(path, 2026),
        path,
        f"line {len(rows) + 1}, columns 1+2 (HCPCS+MOD): {(first[0], first[1])!r} repeats the key of line "
        f"{RVU_FIRST_DATA_LINE}",
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
    path = _set_cell(rvu_file, 1, 1, title)
    _refused(lambda: parse_rvu(path, 2026), path, "line 1, column 1 (title)", f"is for {named}, not 2026")


def test_seeded_rvu_file_of_another_year_is_refused(tmp_path: Path, pool: pl.DataFrame) -> None:
    path = tmp_path / "PPRRVU25.csv"
    write_rvu_file(path, pool, 2025)
    _refused(lambda: parse_rvu(path, 2026), path, "line 1, column 1 (title): '2025 National", "is for 2025, not 2026")


# ---------------------------------------------------------------- GPCI refusals


@pytest.mark.parametrize(
    ("columns", "missing"), [(2, "column 3 (Locality Number)"), (5, "column 6 (PE GPCI)"), (6, "column 7 (MP GPCI)")]
)
def test_short_gpci_row_is_refused(gpci_file: Path, columns: int, missing: str) -> None:
    path = _truncate(gpci_file, GPCI_FIRST_DATA_LINE + 1, columns)
    _refused(
        lambda: parse_gpci(path, 2026),
        path,
        f"line {GPCI_FIRST_DATA_LINE + 1}, {missing}: missing: the row has {columns} columns",
        "layout has 7",
    )


@pytest.mark.parametrize(("column", "title"), [(5, "PW GPCI"), (6, "PE GPCI"), (7, "MP GPCI")])
def test_empty_gpci_is_refused(gpci_file: Path, column: int, title: str) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, column, "")
    _refused(lambda: parse_gpci(path, 2026), path, f"line {GPCI_FIRST_DATA_LINE}, column {column} ({title}): empty")


@pytest.mark.parametrize(
    ("column", "title", "value"),
    [(5, "PW GPCI", "0"), (6, "PE GPCI", "0.000"), (7, "MP GPCI", "-0.500"), (5, "PW GPCI", "-1.000")],
)
def test_gpci_not_above_zero_is_refused(gpci_file: Path, column: int, title: str, value: str) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE + 2, column, value)
    _refused(
        lambda: parse_gpci(path, 2026),
        path,
        f"line {GPCI_FIRST_DATA_LINE + 2}, column {column} ({title}): {value!r} must be above 0",
    )


def test_non_numeric_gpci_is_refused(gpci_file: Path) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, 6, "n/a")
    _refused(
        lambda: parse_gpci(path, 2026),
        path,
        f"line {GPCI_FIRST_DATA_LINE}, column 6 (PE GPCI): 'n/a' is not a number with at most 4 decimals",
    )


def test_gpci_row_without_a_mac_is_refused(gpci_file: Path) -> None:
    path = _set_cell(gpci_file, GPCI_FIRST_DATA_LINE, 1, "")
    _refused(lambda: parse_gpci(path, 2026), path, f"line {GPCI_FIRST_DATA_LINE}, column 1 (MAC): ''")


def test_duplicate_mac_and_locality_is_refused_after_zero_padding(gpci_file: Path) -> None:
    rows = _rows(gpci_file)
    first = rows[GPCI_FIRST_DATA_LINE - 1]  # 01112, CA, 05
    duplicate_line = GPCI_FIRST_DATA_LINE + GPCI_ROWS
    rows.insert(duplicate_line - 1, ["1112", "CA", "5", "again", "1.000", "1.000", "1.000"])
    path = _write_rows(gpci_file, rows)
    assert (first[0], first[2]) == ("01112", "05")
    _refused(
        lambda: parse_gpci(path, 2026),
        path,
        f"line {duplicate_line}, columns 1+3 (MAC+Locality Number): ('01112', '05') repeats the key of line "
        f"{GPCI_FIRST_DATA_LINE}",
    )


def test_seeded_gpci_file_of_another_year_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "GPCI2025.csv"
    write_gpci_file(path, 2025, np.random.default_rng(3))
    _refused(lambda: parse_gpci(path, 2026), path, "line 1, column 1 (title): 'ADDENDUM E. FINAL CY 2025", "not 2026")


@pytest.mark.parametrize(("column", "title"), [(5, "PW GPCI"), (6, "PE GPCI"), (7, "MP GPCI")])
def test_gpci_column_named_for_another_year_is_refused(gpci_file: Path, column: int, title: str) -> None:
    rows = _rows(gpci_file)
    header = rows[GPCI_HEADER_LINE - 1]
    path = _set_cell(gpci_file, GPCI_HEADER_LINE, column, header[column - 1].replace("2026", "2025"))
    _refused(
        lambda: parse_gpci(path, 2026),
        path,
        f"line {GPCI_HEADER_LINE}, column {column} ({title}): '2025 {title}",
        "is for 2025, not 2026",
    )


def test_gpci_naming_no_year_is_taken_on_trust(gpci_file: Path) -> None:
    rows = _rows(gpci_file)
    rows[0] = ["GEOGRAPHIC PRACTICE COST INDICES BY STATE AND LOCALITY"]
    rows[GPCI_HEADER_LINE - 1] = [cell.replace("2026 ", "") for cell in rows[GPCI_HEADER_LINE - 1]]
    assert parse_gpci(_write_rows(gpci_file, rows), 2026).height == GPCI_ROWS


# ---------------------------------------------------------------- QP list


def test_qp_list_parses_and_refuses_bad_npis(tmp_path: Path) -> None:
    path = tmp_path / "qp.csv"
    path.write_text("npi\n1234567893\n\n 1326045678 \n")
    assert parse_qp_list(path).get_column("npi").to_list() == ["1234567893", "1326045678"]
    path.write_text("npi\n1234567893\n123456789\n")
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
