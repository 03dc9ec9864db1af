"""The test tree's shape (README, "The house"): unit tests under tests/unit/<the package folder they test>,
integration tests under tests/integration/<area>. No two test files share a basename, so a name that
`pytest -k`, `--durations` or a failure prints points at one file, and every folder is a package, so
pytest's module names are unique too. Read from the tree, no database."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import claims_etl

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = Path(claims_etl.__file__).parent


def _test_files() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_no_two_test_files_share_a_basename() -> None:
    names = Counter(path.name for path in _test_files())
    assert sorted(name for name, count in names.items() if count > 1) == []


def test_every_test_folder_is_a_package() -> None:
    folders = {path.parent for path in TESTS.rglob("*.py")}
    assert sorted(str(folder.relative_to(TESTS)) for folder in folders if not (folder / "__init__.py").is_file()) == []


def test_unit_folders_mirror_the_package() -> None:
    """A folder of unit tests is named after the package folder it tests (benchmarks/: the benchmarks' own)."""
    package_folders = {init.parent.relative_to(PACKAGE) for init in PACKAGE.rglob("__init__.py")} | {Path("benchmarks")}
    unit = TESTS / "unit"
    folders = {path.parent.relative_to(unit) for path in _test_files() if path.is_relative_to(unit)}
    assert sorted(str(folder) for folder in folders - package_folders) == []
