"""CMS reference files against the real PostgreSQL: a malformed file loads nothing, loading a year again
replaces it atomically, and a GPCI-only release takes its RVU rows from the release before it, so the 2026
work GPCI floor can end on January 31 (the parsing and what it refuses: tests/unit/reference/test_cms_files.py)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest

import claims_etl as ce
from claims_etl.errors import ConfigurationError, ReferenceFileError
from claims_etl.reference.store import ReleaseFiles, list_releases, load_release, load_year, read_frames
from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, write_reference_files
from tests.db import read_source
from tests.factories import claim, claims_frame, line, lines_frame


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write_reference_files(tmp_path, seed=7, pool=code_pool(7, codes=100))[2026]


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> Path:
    path.write_text(path.read_text().replace(old, new, count))
    return path


def test_load_replaces_a_year_and_a_malformed_file_loads_nothing(
    pg_settings: Settings, files: tuple[Path, Path]
) -> None:
    rvu_rows, gpci_rows = load_year(pg_settings, files[0], files[1], 2026, work_gpci="floor")
    assert read_source("SELECT count(*) AS n FROM staging.rvu WHERE year = 2026").item() == rvu_rows
    again = load_year(pg_settings, files[0], files[1], 2026, work_gpci="floor")
    assert again == (rvu_rows, gpci_rows)
    assert read_source("SELECT count(*) AS n FROM staging.rvu").item() == rvu_rows
    bad_gpci = _rewrite(files[1], "2026 MP GPCI", "nonsense")
    with pytest.raises(ReferenceFileError, match="no column named 'MP GPCI'"):
        load_year(pg_settings, files[0], bad_gpci, 2026, work_gpci="floor")
    assert read_source("SELECT count(*) AS n FROM staging.gpci WHERE year = 2026").item() == gpci_rows
    frames = read_frames(pg_settings)
    assert frames.rvu.height == rvu_rows and frames.gpci.get_column("pw_gpci_e4").min() >= 10_000  # 1.0 floor
    opps = frames.rvu.filter(pl.col("opps_nonfac_pe_rvu_e4") > 0)
    assert opps.height > 0 and set(opps.get_column("mult_proc")) == {"4"} and set(opps["modifier"]) == {"", "TC"}
    assert (opps["opps_nonfac_pe_rvu_e4"] < opps["nonfac_pe_rvu_e4"]).all()


def test_both_work_gpci_columns_without_a_choice_load_nothing(pg_settings: Settings, files: tuple[Path, Path]) -> None:
    with pytest.raises(ReferenceFileError, match=r"choose one with --work-gpci floor\|no-floor"):
        load_release(pg_settings, ReleaseFiles(rvu=files[0], gpci=files[1]), year=2026)
    assert read_source("SELECT count(*) AS n FROM staging.reference_releases").item() == 0


def _fee_cents(rvu: dict[str, int], gpci: dict[str, int]) -> int:
    """docs/spec.md §4.3 by hand, non-facility, from the frames' x10^4 integers."""
    total = sum(
        Decimal(rvu[f"{part}_rvu_e4"]) * Decimal(gpci[f"{index}_gpci_e4"])
        for part, index in (("work", "pw"), ("nonfac_pe", "pe"), ("mp", "mp"))
    ) / Decimal(10**8)
    return int((total * Decimal(rvu["conv_factor_e4"]) / 10_000 * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture
def floor_then_no_floor(pg_settings: Settings, files: tuple[Path, Path]) -> Settings:
    """2026A from January 1 with the floored work GPCI, and a GPCI-only 2026A2 from February 1 without."""
    january = load_release(
        pg_settings, ReleaseFiles(rvu=files[0], gpci=files[1]), year=2026, qp_cf=Decimal("33.5675"), work_gpci="floor"
    )
    assert (january.release, january.effective_from, january.work_gpci) == ("2026A", date(2026, 1, 1), "floor")
    assert january.inferred is not None and january.inferred.source == (
        "the banner of PPRRVU26_synthetic.csv (January Release)"
    )
    february = load_release(
        pg_settings,
        ReleaseFiles(gpci=files[1]),
        year=2026,
        release="2026A2",
        effective=date(2026, 2, 1),
        work_gpci="no-floor",
    )
    assert (february.rvu_from, february.rvu_rows, february.gpci_rows) == ("from 2026A", january.rvu_rows, 12)
    assert (february.work_gpci, february.inferred) == ("no-floor", None)
    return pg_settings


def test_a_gpci_only_release_carries_the_rvu_rows_and_records_the_choice(floor_then_no_floor: Settings) -> None:
    listed = {row["release"]: row for row in list_releases(floor_then_no_floor)}
    assert {
        key: listed["2026A2"][key] for key in ("rvu_file", "rvu_sha256", "qp_source", "gpci_file", "work_gpci")
    } == {
        "rvu_file": "from 2026A",
        "rvu_sha256": "",
        "qp_source": "from 2026A",
        "gpci_file": "GPCI2026_synthetic.csv",
        "work_gpci": "no-floor",
    }
    assert listed["2026A"]["work_gpci"] == "floor" and listed["2026A"]["rvu_file"] == "PPRRVU26_synthetic.csv"
    rvu = read_frames(floor_then_no_floor).rvu
    carried = [
        rvu.filter(pl.col("release") == label).drop("release").sort("hcpcs", "modifier")
        for label in ("2026A", "2026A2")
    ]
    assert carried[0].equals(carried[1]) and carried[1].get_column("qp_conv_factor_e4").unique().to_list() == [335_675]


def test_january_prices_with_the_floored_work_gpci_and_february_without(floor_then_no_floor: Settings) -> None:
    frames = read_frames(floor_then_no_floor)
    gpci = frames.gpci.filter(pl.col("release") == "2026A").join(
        frames.gpci.filter(pl.col("release") == "2026A2"), on=["mac", "locality"], suffix="_feb"
    )
    below = gpci.filter(pl.col("pw_gpci_e4") != pl.col("pw_gpci_e4_feb")).row(0, named=True)
    assert below["pw_gpci_e4"] == 10_000 and below["pw_gpci_e4_feb"] < 10_000  # the floor lifts it to 1.000
    code = frames.rvu.filter(
        (pl.col("release") == "2026A") & (pl.col("modifier") == "") & (pl.col("status_code") == "A")
        & (pl.col("mult_proc") == "0") & (pl.col("pctc_ind") == "0") & (pl.col("work_rvu_e4") > 0)
    ).row(0, named=True)  # fmt: skip
    where = {"mac": below["mac"], "locality": below["locality"], "place_of_service": "11"}
    claims = claims_frame(claim(claim_id=1, **where), claim(claim_id=2, **where))
    served = [date(2026, 1, 31), date(2026, 2, 1)]
    lines = lines_frame(
        *(
            line(claim_id=n, service_date=day, procedure_code=code["hcpcs"], charge_cents=10**8)
            for n, day in zip((1, 2), served, strict=True)
        )
    )
    priced = ce.price(claims, lines, frames).lines.sort("claim_id")
    january = _fee_cents(code, below)
    february = _fee_cents(code, {**below, "pw_gpci_e4": below["pw_gpci_e4_feb"]})
    assert priced.select("rvu_release", "fee_schedule_cents", "allowed_cents").rows() == [
        ("2026A", january, january),
        ("2026A2", february, february),
    ]
    assert february < january


def test_a_gpci_only_release_needs_an_earlier_release_and_its_dates(
    pg_settings: Settings, files: tuple[Path, Path]
) -> None:
    gpci_only = ReleaseFiles(gpci=files[1])
    with pytest.raises(ReferenceFileError, match="no earlier 2026 release in force before 2026-02-01"):
        load_release(pg_settings, gpci_only, year=2026, release="2026A2", effective=date(2026, 2, 1), work_gpci="floor")
    with pytest.raises(ConfigurationError, match="give --release and --effective"):
        load_release(pg_settings, gpci_only, year=2026, release="2026A2", work_gpci="floor")
    assert read_source("SELECT count(*) AS n FROM staging.reference_releases").item() == 0
