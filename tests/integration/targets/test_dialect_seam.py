"""A warehouse dialect is one capabilities entry (claims_etl/targets/capabilities.py): a second MariaDB
dialect, registered here under its own name for one library of the MariaDB driver and pointed at the
MariaDB DDL, connects, creates its tables and loads a real run with no other change to the code."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

import claims_etl
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from claims_etl.targets import CAPABILITIES, connect_target, target_dialect
from tests.db import TARGETS, _reset, make_settings, read_source

SEAM = "mariadb_seam"
CLAIMS = 300


@pytest.fixture
def seam_dialect() -> Iterator[str]:
    """The MariaDB capabilities under a new name, selected by the driver's library (a longer, so more
    specific, fragment than the mysql entry's `maodbc`); removed after the test."""
    CAPABILITIES[SEAM] = dataclasses.replace(
        CAPABILITIES["mysql"], name=SEAM, driver_fragments=("libmaodbc.so",), ddl="mysql"
    )
    try:
        yield SEAM
    finally:
        del CAPABILITIES[SEAM]


@pytest.fixture
def seam_settings(seam_dialect: str, target_name: str, tmp_path: Path) -> Settings:
    """Fresh databases on MariaDB, its driver named by its library: the new dialect's fragment."""
    odbc = TARGETS["mysql"].replace("Driver={MariaDB Unicode}", "Driver=libmaodbc.so")
    settings = make_settings("mysql", target_odbc=odbc)
    _reset(settings)
    seed(settings, CLAIMS, seed=5, invalid_rate=0.1, directory=tmp_path)
    return settings


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_dialect_added_by_its_capabilities_alone_loads_a_run(
    seam_settings: Settings, read_target: Callable[[str], pl.DataFrame]
) -> None:
    assert target_dialect(seam_settings) == SEAM
    target = connect_target(seam_settings)
    try:
        assert target.dialect == SEAM and target.table("etl_runs") == "etl_runs"
    finally:
        target.close()

    result = claims_etl.run(seam_settings)

    priced = read_target("SELECT claim_id FROM warehouse.priced_claims").get_column("claim_id")
    rejected = read_target("SELECT claim_id FROM warehouse.rejected_claims").get_column("claim_id")
    assert (result.claims_read, priced.len(), rejected.len()) == (CLAIMS, result.claims_priced, result.claims_rejected)
    assert pl.concat([priced, rejected]).n_unique() == CLAIMS
    statuses = read_source("SELECT status, count(*) AS n FROM staging.claims GROUP BY status ORDER BY status")
    assert dict(statuses.iter_rows()) == {"processed": priced.len(), "rejected": rejected.len()}
    runs = read_target(f"SELECT status FROM warehouse.etl_runs WHERE run_id = '{result.run_id}'")
    assert runs.rows() == [("succeeded",)]
