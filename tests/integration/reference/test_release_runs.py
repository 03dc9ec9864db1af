"""Reference releases against the real databases (docs/spec.md §7): a B release prices service dates
from its effective date on, the QP list switches the conversion factor, claims no release prices stay
pending (exit 2, or --skip-unpriceable), a bad file changes nothing, the CMS zip loads directly, and a
database from before releases is migrated by `db init`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import psycopg
import pytest

from claims_etl.db.source import init_source
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from claims_etl.synthetic import code_pool, write_reference_files, write_rvu_file
from tests.db import SOURCE_URL, cli_env, read_source, run_cli
from tests.seeding import seeded_fixture
from tests.unit.cli.test_app import assert_one_clear_line

SEED = 5
CLAIMS = 300


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        env=cli_env(settings, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _release_b(directory: Path) -> Path:
    """A 2026 B revision of the seeded codes: every work RVU 0.50 higher."""
    path = directory / "PPRRVU26_B.csv"
    write_rvu_file(path, code_pool(SEED).with_columns(pl.col("work") + 50), 2026)
    return path


def _releases(settings: Settings) -> list[dict[str, str]]:
    listed = _cli(settings, "reference", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [{key: str(value) for key, value in row.items()} for row in json.loads(listed.stdout)]


seeded = seeded_fixture(CLAIMS, seed=SEED, invalid_rate=0.0, on="pg_settings", subdirectory="seed")


def test_a_b_release_prices_from_its_effective_date_and_qp_npis_get_the_qp_factor(
    seeded: Settings, tmp_path: Path
) -> None:
    b_file = _release_b(tmp_path)
    loaded = _cli(seeded, "reference", "load", "--rvu", str(b_file), "--year", "2026", "--release", "2026B",
                  "--effective", "2026-04-01", "--qp-cf", "33.5675")  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "release 2026B" in loaded.stdout and "from 2026A" in loaded.stdout  # GPCI carried over
    npis = read_source("SELECT DISTINCT coalesce(rendering_npi, billing_npi) AS npi FROM staging.claims LIMIT 40")
    qp_file = tmp_path / "qp_npis.csv"
    npis.select("npi").write_csv(qp_file)
    assert _cli(seeded, "reference", "load-qp", "--file", str(qp_file), "--year", "2026").returncode == 0
    releases = {row["release"]: row for row in _releases(seeded)}
    assert sorted(releases) == ["2025A", "2026A", "2026B"]
    assert releases["2026B"]["effective_from"] == "2026-04-01"
    assert releases["2026B"]["rvu_sha256"] == hashlib.sha256(b_file.read_bytes()).hexdigest()

    done = run_cli(cli_env(seeded))
    assert done.returncode == 0, done.stderr
    lines = read_source(
        "SELECT l.service_date, p.rvu_release, p.cf_kind, coalesce(c.rendering_npi, c.billing_npi) AS npi "
        "FROM warehouse.priced_claim_lines AS p "
        "JOIN staging.claim_lines AS l USING (claim_id, line_number) JOIN staging.claims AS c USING (claim_id)"
    )
    assert lines.height > 500
    expected_release = (
        pl.when(pl.col("service_date").dt.year() == 2025)
        .then(pl.lit("2025A"))
        .when(pl.col("service_date") < pl.date(2026, 4, 1))
        .then(pl.lit("2026A"))
        .otherwise(pl.lit("2026B"))
    )
    listed = pl.col("npi").is_in(npis.get_column("npi").implode()) & (pl.col("service_date").dt.year() == 2026)
    expected_kind = pl.when(listed).then(pl.lit("qp")).otherwise(pl.lit("non_qp"))
    checked = lines.with_columns(expected_release.alias("want_release"), expected_kind.alias("want_kind"))
    assert checked.filter(pl.col("rvu_release") != pl.col("want_release")).is_empty()
    assert checked.filter(pl.col("cf_kind") != pl.col("want_kind")).is_empty()
    assert set(checked.get_column("rvu_release")) == {"2025A", "2026A", "2026B"}
    assert set(checked.get_column("cf_kind")) == {"qp", "non_qp"}


def test_a_year_whose_first_release_takes_effect_mid_year_leaves_its_earlier_claims_unpriceable(
    seeded: Settings,
) -> None:
    """The preflight tests each line's date against the intervals the releases price: a year priced
    from July on leaves its claims with a line in January to June unpriceable, and no others."""
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:
        source.execute("UPDATE staging.reference_releases SET effective_from = DATE '2025-07-01' WHERE year = 2025")
    before_july = read_source(
        "SELECT count(DISTINCT claim_id) AS n FROM staging.claim_lines "
        "WHERE service_date >= '2025-01-01' AND service_date < '2025-07-01'"
    ).item()
    assert 0 < before_july < CLAIMS

    stopped = run_cli(cli_env(seeded))
    assert_one_clear_line(stopped, 2, f"2025 ({before_july} claims)")
    assert read_source("SELECT count(*) AS n FROM staging.range_leases").item() == 0


def test_claims_no_release_prices_stay_pending_and_the_run_exits_2(seeded: Settings, tmp_path: Path) -> None:
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:  # as if 2025 had never been loaded
        for table in ("rvu", "gpci", "reference_releases"):
            source.execute(f"DELETE FROM staging.{table} WHERE year = 2025")
    in_2025 = read_source(
        "SELECT count(DISTINCT claim_id) AS n FROM staging.claim_lines WHERE service_date < '2026-01-01'"
    ).item()
    assert 0 < in_2025 < CLAIMS

    stopped = run_cli(cli_env(seeded))
    assert_one_clear_line(stopped, 2, f"2025 ({in_2025} claims)")
    assert read_source("SELECT count(*) AS n FROM staging.claims WHERE status = 'pending'").item() == CLAIMS
    assert read_source("SELECT count(*) AS n FROM staging.range_leases").item() == 0

    skipped = run_cli(cli_env(seeded), "--skip-unpriceable")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["claims_unpriceable"] == {"2025": in_2025}
    assert read_source("SELECT count(*) AS n FROM staging.claims WHERE status = 'pending'").item() == in_2025

    rvu, gpci = write_reference_files(tmp_path / "again", seed=SEED, pool=code_pool(SEED))[2025]
    assert _cli(seeded, "reference", "load", "--rvu", str(rvu), "--gpci", str(gpci), "--year", "2025").returncode == 0
    finished = run_cli(cli_env(seeded))
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["claims_read"] == in_2025
    assert read_source("SELECT count(*) AS n FROM staging.claims WHERE status = 'pending'").item() == 0


@pytest.mark.parametrize(
    ("breaks", "extra", "fragment"),
    [
        (("0.50", "-0.50"), (), "negative"),  # a negative RVU somewhere in the file
        (None, ("--effective", "2025-12-31"), "outside 2026"),
        (None, ("--effective", "2026-01-01"), "2026A is already in force from 2026-01-01"),
        (None, ("--release", "B2026"), "label"),
        (None, ("--qp-cf", "33.56755"), "at most 4 decimals"),
        (None, ("--qp-cf", "0"), "positive"),
    ],
    ids=["negative-rvu", "effective-outside-year", "effective-date-taken", "bad-label", "qp-cf-5-decimals", "qp-cf-0"],
)
def test_a_refused_load_changes_nothing(
    seeded: Settings, tmp_path: Path, breaks: tuple[str, str] | None, extra: tuple[str, ...], fragment: str
) -> None:
    b_file = _release_b(tmp_path)
    if breaks is not None:
        b_file.write_text(b_file.read_text().replace(*breaks, 1))
    before = _releases(seeded)
    rvu_rows = read_source("SELECT count(*) AS n FROM staging.rvu").item()
    args = ("--release", "2026B", "--effective", "2026-04-01", *extra) if "--release" not in extra else extra
    refused = _cli(seeded, "reference", "load", "--rvu", str(b_file), "--year", "2026", *args)
    assert refused.returncode in (1, 2) and refused.stdout == "", refused.stdout
    assert_one_clear_line(refused, refused.returncode, fragment)
    assert _releases(seeded) == before
    assert read_source("SELECT count(*) AS n FROM staging.rvu").item() == rvu_rows


def test_the_cms_zip_loads_both_conversion_factors_and_its_gpci(pg_settings: Settings, tmp_path: Path) -> None:
    rvu, gpci = write_reference_files(tmp_path, seed=SEED, pool=code_pool(SEED, codes=30))[2026]
    archive = tmp_path / "RVU26A.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("PPRRVU26_JAN_nonQPP.csv", rvu.read_text())
        bundle.writestr("PPRRVU26_JAN_QPP.csv", rvu.read_text().replace(",33.4009", ",33.5675"))
        bundle.writestr("GPCI2026.csv", gpci.read_text())
        bundle.writestr("RVU26A.pdf", "not a CSV")
    refused = _cli(pg_settings, "reference", "load", "--rvu-zip", str(archive), "--year", "2026")
    assert_one_clear_line(refused, 1, "GPCI2026.csv: line 3, header: it has both")
    assert "choose one with --work-gpci floor|no-floor" in refused.stderr
    loaded = _cli(pg_settings, "reference", "load", "--rvu-zip", str(archive), "--year", "2026", "--work-gpci", "floor")
    assert loaded.returncode == 0, loaded.stderr
    assert "QP conversion factor 33.5675" in loaded.stdout
    assert loaded.stdout.splitlines()[0] == (
        "release 2026A, in force from 2026-01-01: inferred from the banner of PPRRVU26_JAN_nonQPP.csv "
        "(January Release) (--release/--effective override)"
    )
    factors = read_source("SELECT DISTINCT conv_factor::text AS cf, qp_conv_factor::text AS qp FROM staging.rvu")
    assert factors.rows() == [("33.4009", "33.5675")]
    frames = read_frames(pg_settings)
    assert frames.gpci.height > 0 and frames.releases.get_column("release").to_list() == ["2026A"]


def test_db_init_migrates_a_database_from_before_releases(pg_settings: Settings, tmp_path: Path) -> None:
    rvu, gpci = write_reference_files(tmp_path, seed=SEED, pool=code_pool(SEED, codes=30))[2026]
    loaded = _cli(pg_settings, "reference", "load", "--rvu", str(rvu), "--gpci", str(gpci), "--year", "2026",
                  "--work-gpci", "floor")  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    want = read_frames(pg_settings)
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:  # back to the layout before releases
        source.execute(
            "CREATE TABLE staging.reference_versions AS "
            "SELECT year, version, loaded_at FROM staging.reference_releases; "
            "DROP VIEW staging.etl_unpriceable_lines; "
            "DROP TABLE staging.reference_releases; "
            "ALTER TABLE staging.rvu DROP CONSTRAINT rvu_pkey, DROP COLUMN release, DROP COLUMN qp_conv_factor; "
            "ALTER TABLE staging.rvu ADD PRIMARY KEY (year, hcpcs, modifier); "
            "ALTER TABLE staging.gpci DROP CONSTRAINT gpci_pkey, DROP COLUMN release; "
            "ALTER TABLE staging.gpci ADD PRIMARY KEY (year, mac, locality)"
        )
    init_source(pg_settings)
    init_source(pg_settings)  # db init runs again on a migrated database unchanged
    migrated = read_frames(pg_settings)
    assert migrated.releases.rows() == want.releases.rows()
    assert migrated.rvu.sort("hcpcs", "modifier").equals(want.rvu.sort("hcpcs", "modifier"))
    assert read_source("SELECT to_regclass('staging.reference_versions') IS NULL AS gone").item() is True


def test_db_init_adds_the_columns_read_by_name_to_an_older_database(pg_settings: Settings, tmp_path: Path) -> None:
    rvu, gpci = write_reference_files(tmp_path, seed=SEED, pool=code_pool(SEED, codes=30))[2025]
    assert (
        _cli(pg_settings, "reference", "load", "--rvu", str(rvu), "--gpci", str(gpci), "--year", "2025").returncode == 0
    )
    with psycopg.connect(SOURCE_URL, autocommit=True) as source:  # back to the tables before issue 28
        source.execute(
            "ALTER TABLE staging.rvu DROP COLUMN pric_ind, DROP COLUMN diag_imaging_family, "
            "DROP COLUMN opps_nonfac_pe_rvu, DROP COLUMN opps_facility_pe_rvu, DROP COLUMN opps_mp_rvu; "
            "ALTER TABLE staging.reference_releases DROP COLUMN work_gpci"
        )
    init_source(pg_settings)
    frames = read_frames(pg_settings)
    assert frames.rvu.select(pl.sum_horizontal(pl.col("^opps_.*_e4$")).sum()).item() == 0  # no cap until reloaded
    assert [row["work_gpci"] for row in _releases(pg_settings)] == ["None"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "give the PPRRVU file as --rvu FILE or --rvu-zip ZIP, or a GPCI-only release as --gpci FILE"),
        (("--gpci", "GPCI2026.csv", "--release", "2026A2"), "a GPCI-only release needs its label and date"),
        (("--gpci", "GPCI2026.csv", "--work-gpci", "both"), "'both' is not one of 'floor', 'no-floor'"),
    ],
)
def test_reference_load_usage_errors_exit_2(pg_settings: Settings, args: tuple[str, ...], fragment: str) -> None:
    refused = _cli(pg_settings, "reference", "load", "--year", "2026", *args)
    assert refused.returncode == 2 and refused.stdout == "", refused.stdout
    assert fragment in refused.stderr, refused.stderr


def test_the_2026_floor_recipe_on_the_command_line(pg_settings: Settings, tmp_path: Path) -> None:
    """docs/operations.md: 2026A with the floored work GPCI, then a GPCI-only release from February 1 without."""
    rvu, gpci = write_reference_files(tmp_path, seed=SEED, pool=code_pool(SEED, codes=30))[2026]
    january = _cli(pg_settings, "reference", "load", "--rvu", str(rvu), "--gpci", str(gpci), "--year", "2026",
                   "--work-gpci", "floor")  # fmt: skip
    assert january.returncode == 0, january.stderr
    assert "inferred from the banner of PPRRVU26_synthetic.csv (January Release)" in january.stdout
    february = _cli(pg_settings, "reference", "load", "--gpci", str(gpci), "--work-gpci", "no-floor", "--year", "2026",
                    "--release", "2026A2", "--effective", "2026-02-01")  # fmt: skip
    assert february.returncode == 0, february.stderr
    assert february.stdout.strip() == (
        "loaded release 2026A2 (2026, in force from 2026-02-01): 44 RVU rows (from 2026A), 12 GPCI rows "
        "(GPCI2026_synthetic.csv, work GPCI no-floor)"
    )
    releases = {row["release"]: row for row in _releases(pg_settings)}
    assert (releases["2026A"]["work_gpci"], releases["2026A2"]["work_gpci"]) == ("floor", "no-floor")
    assert releases["2026A2"]["rvu_file"] == "from 2026A" and releases["2026A2"]["effective_from"] == "2026-02-01"
