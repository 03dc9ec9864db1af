"""CMS reference files against the real PostgreSQL: a malformed file loads nothing, and loading a year again
replaces it atomically (the parsing and what it refuses: tests/unit/test_reference.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims_etl.dev.seed import code_pool, write_reference_files
from claims_etl.errors import ReferenceFileError
from claims_etl.reference.store import load_year, read_frames
from claims_etl.settings import Settings
from tests.db import read_source


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write_reference_files(tmp_path, seed=7, pool=code_pool(7, codes=40))[2026]


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> Path:
    path.write_text(path.read_text().replace(old, new, count))
    return path


def test_load_replaces_a_year_and_a_malformed_file_loads_nothing(
    pg_settings: Settings, files: tuple[Path, Path]
) -> None:
    rvu_rows, gpci_rows = load_year(pg_settings, files[0], files[1], 2026)
    assert read_source("SELECT count(*) AS n FROM staging.rvu WHERE year = 2026").item() == rvu_rows
    again = load_year(pg_settings, files[0], files[1], 2026)
    assert again == (rvu_rows, gpci_rows)
    assert read_source("SELECT count(*) AS n FROM staging.rvu").item() == rvu_rows
    bad_gpci = _rewrite(files[1], "2026 MP GPCI", "nonsense")
    with pytest.raises(ReferenceFileError):
        load_year(pg_settings, files[0], bad_gpci, 2026)
    assert read_source("SELECT count(*) AS n FROM staging.gpci WHERE year = 2026").item() == gpci_rows
    frames = read_frames(pg_settings)
    assert frames.rvu.height == rvu_rows and frames.gpci.get_column("pw_gpci_e4").min() >= 10_000  # 1.0 floor
