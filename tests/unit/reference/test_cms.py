"""CMS reference files (claims_etl/reference/cms.py): the published layouts parse; malformed files are refused
whole; loading them into the real PostgreSQL is in tests/integration/reference/test_reference_load.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims_etl.errors import ReferenceFileError
from claims_etl.reference.cms import parse_gpci, parse_rvu
from claims_etl.synthetic import code_pool, write_reference_files


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write_reference_files(tmp_path, seed=7, pool=code_pool(7, codes=40))[2026]


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> Path:
    path.write_text(path.read_text().replace(old, new, count))
    return path


def test_synthetic_files_parse_in_the_cms_layout(files: tuple[Path, Path]) -> None:
    rvu, gpci = parse_rvu(files[0], 2026), parse_gpci(files[1], 2026, "floor")
    assert rvu.height >= 40 and set(rvu.get_column("modifier").unique()) <= {"", "26", "TC", "53"}
    assert rvu.get_column("conv_factor").unique().to_list() == ["33.4009"]
    assert gpci.height == 12 and gpci.get_column("mac").str.len_chars().unique().to_list() == [5]


def test_gpci_keys_are_zero_padded(tmp_path: Path, files: tuple[Path, Path]) -> None:
    gpci = _rewrite(files[1], "01112,CA,05,", "1112,CA,5,")
    assert ("01112", "05") in parse_gpci(gpci, 2026, "no-floor").select("mac", "locality").rows()


def test_blank_numeric_cells_mean_zero(files: tuple[Path, Path]) -> None:
    lines = files[0].read_text().splitlines()
    cells = lines[10].split(",")
    cells[11] = ""  # NON-FACILITY TOTAL (a blank RVU or CF is refused: tests/unit/reference/test_cms_files.py)
    lines[10] = ",".join(cells)
    files[0].write_text("\n".join(lines) + "\n")
    assert parse_rvu(files[0], 2026).get_column("nonfac_total")[0] == "0"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("HCPCS,MOD,DESCRIPTION", "CODE,MOD,DESCRIPTION", "no header row starting with 'HCPCS'"),
        ("PCTC,GLOB", "PCTC,GLOBAL", "no column named 'GLOB DAYS'"),  # found by name: "GLOBAL DAYS" is not it
    ],
)
def test_rvu_header_that_does_not_fit_is_refused(files: tuple[Path, Path], old: str, new: str, message: str) -> None:
    with pytest.raises(ReferenceFileError, match=message):
        parse_rvu(_rewrite(files[0], old, new), 2026)


def test_rvu_non_number_is_refused_naming_the_line(files: tuple[Path, Path]) -> None:
    lines = files[0].read_text().splitlines()
    cells = lines[12].split(",")
    cells[5] = "1.2.3"
    lines[12] = ",".join(cells)
    files[0].write_text("\n".join(lines) + "\n")
    with pytest.raises(ReferenceFileError, match=r"line 13, column 6 \(WORK RVU\): '1.2.3'"):
        parse_rvu(files[0], 2026)


def test_rvu_duplicate_key_is_refused(files: tuple[Path, Path]) -> None:
    lines = files[0].read_text().splitlines()
    files[0].write_text("\n".join([*lines[:11], lines[10], *lines[11:]]) + "\n")
    with pytest.raises(
        ReferenceFileError, match=r"line 12, columns 1\+2 \(HCPCS\+MOD\): .* repeats the key of line 11"
    ):
        parse_rvu(files[0], 2026)


def test_gpci_header_that_does_not_fit_is_refused(files: tuple[Path, Path]) -> None:
    with pytest.raises(ReferenceFileError, match="line 3, header: no column named 'PE GPCI'"):
        parse_gpci(_rewrite(files[1], "2026 PE GPCI", "2026 XX GPCI"), 2026, "floor")


def test_a_file_that_is_not_csv_at_all_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02 not a fee schedule")
    with pytest.raises(ReferenceFileError, match="not a CMS"):
        parse_rvu(junk, 2026)
    with pytest.raises(ReferenceFileError, match="cannot read"):
        parse_rvu(tmp_path / "missing.csv", 2026)
