"""The one `seeded` fixture factory: a module states how many claims it seeds, with which seed and share
of invalid claims, on which settings fixture, and what it changes afterwards; every test then starts on
that source. The first test to seed a given (claims, seed, invalid rate) runs `claims_etl.synthetic`; the
session keeps a copy of the rows it wrote (in the test database's seed_cache schema) and of its
reference files, and later tests get them copied back, each reference release with a new version as a
fresh load would give it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from claims_etl.settings import Settings
from claims_etl.synthetic import seed as seed_claims
from tests import db

CACHE_SCHEMA = "seed_cache"
# What `seed` writes (the reference releases, then the claims); the tests' reset empties them all.
SEEDED_TABLES = ("rvu", "gpci", "reference_releases", "qp_npis", "qp_lists", "claims", "claim_lines")
# A reload gives a release (and a QP list) a new version, which keys the reference cache.
_NEW_VERSIONS = (
    "UPDATE staging.reference_releases SET version = gen_random_uuid(), loaded_at = now()",
    "UPDATE staging.qp_lists SET version = gen_random_uuid(), loaded_at = now()",
)


@dataclass(frozen=True)
class SeedKey:
    claims: int
    seed: int
    invalid_rate: float

    def table(self, name: str) -> str:
        return f"{CACHE_SCHEMA}.c{self.claims}_s{self.seed}_i{round(self.invalid_rate * 1000)}_{name}"


@dataclass(frozen=True)
class _Cached:
    structure: str  # the source's structure the rows were copied from (tests/db.py's reset)
    files: Path  # the reference files `seed` wrote


_cached: dict[SeedKey, _Cached] = {}


def _new_cache() -> None:
    """An empty cache schema for this session (the seed code may have changed since the last one)."""
    with psycopg.connect(db.SOURCE_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {CACHE_SCHEMA} CASCADE")
        connection.execute(f"CREATE SCHEMA {CACHE_SCHEMA}")


def seed_source(settings: Settings, key: SeedKey, directory: Path, files_cache: Path) -> None:
    """`seed` on the source the reset just emptied, or the same rows and files copied back."""
    if not _cached:
        _new_cache()
    structure = db.clean_structure("source")
    cached = _cached.get(key)
    if cached is not None and cached.structure == structure:
        shutil.copytree(cached.files, directory, dirs_exist_ok=True)
        with psycopg.connect(db.SOURCE_URL) as connection:
            for name in SEEDED_TABLES:
                connection.execute(f"INSERT INTO staging.{name} SELECT * FROM {key.table(name)}")
            for statement in _NEW_VERSIONS:
                connection.execute(statement)
        return
    seed_claims(settings, key.claims, seed=key.seed, invalid_rate=key.invalid_rate, directory=directory)
    files = files_cache / f"{key.claims}-{key.seed}-{key.invalid_rate}"
    shutil.copytree(directory, files, dirs_exist_ok=True)
    with psycopg.connect(db.SOURCE_URL) as connection:
        for name in SEEDED_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {key.table(name)}")
            connection.execute(f"CREATE TABLE {key.table(name)} AS SELECT * FROM staging.{name}")
    _cached[key] = _Cached(structure, files)


def seeded_fixture(
    claims: int,
    *,
    seed: int,
    invalid_rate: float,
    on: str = "settings",
    subdirectory: str = "",
    then: Callable[[Settings], Settings | None] | None = None,
) -> Callable[..., Settings]:
    """A `seeded` fixture: the settings fixture `on` ("settings": each target; "pg_settings": the
    psqlODBC one alone) with `claims` pending claims seeded by `seed` (`invalid_rate` of them
    invalid), its reference files in the test's tmp_path (/`subdirectory`); `then` changes the source
    further and may return other settings."""
    key = SeedKey(claims, seed, invalid_rate)

    def make(settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
        directory = tmp_path / subdirectory if subdirectory else tmp_path
        seed_source(settings, key, directory, tmp_path_factory.getbasetemp() / "seed-files")
        changed = then(settings) if then else None
        return changed or settings

    if on == "pg_settings":

        @pytest.fixture
        def seeded(pg_settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
            return make(pg_settings, tmp_path, tmp_path_factory)

        return seeded

    @pytest.fixture
    def seeded(settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
        return make(settings, tmp_path, tmp_path_factory)

    return seeded
