"""The analysts' notebook (notebooks/explore.ipynb) run end to end with nbclient against a database of its
own, which its first cell seeds (committed without outputs, using only the public API: tests/unit/test_notebook.py)."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import nbformat
import psycopg
import pytest
from nbclient import NotebookClient
from psycopg import sql

import claims_etl as ce
from claims_etl.schemas import CLAIMS, LINES
from tests.db import PG_ADMIN_URL, PG_HOST, TEST_DB

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
NOTEBOOK_DB = f"{TEST_DB}_nb"
NOTEBOOK_URL = f"postgresql://postgres@{PG_HOST}:5432/{NOTEBOOK_DB}"
SEED_CLAIMS = 1_500
CELL_TIMEOUT = 300  # seconds per cell
RULE_IDS = {f"V{n:02d}" for n in range(1, 16)}
KERNEL_CHECK = "import sys\nprint(sys.prefix)"


def _cell(notebook: Any, cell_id: str) -> Any:
    return next(cell for cell in notebook.cells if cell.get("id") == cell_id)


def _text(cell: Any) -> str:
    """Everything a code cell showed as text: streams, and the plain-text form of results and displays."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in {"execute_result", "display_data"}:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def _empty_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [NOTEBOOK_DB]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NOTEBOOK_DB)))
    with psycopg.connect(NOTEBOOK_URL, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS staging CASCADE")
        connection.execute("DROP SCHEMA IF EXISTS warehouse CASCADE")


@pytest.fixture(scope="module")
def executed(databases: dict[str, bool], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook executed once (plus a last cell reporting the kernel's interpreter) on an empty database."""
    _empty_database()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    check = nbformat.v4.new_code_cell(KERNEL_CHECK)
    check["id"] = "kernel-check"
    notebook.cells.append(check)
    workdir = tmp_path_factory.mktemp("notebook-cwd")
    with pytest.MonkeyPatch.context() as env:  # the kernel process inherits this environment
        env.setenv("CLAIMS_ETL_SOURCE_URL", NOTEBOOK_URL)
        env.setenv("CLAIMS_ETL_NOTEBOOK_SEED", str(SEED_CLAIMS))
        # The kernel runs in a scratch directory: import the working tree's package explicitly, as pytest does
        # (a stale editable install made before claims_etl/__init__.py existed resolves to a namespace package).
        env.setenv("PYTHONPATH", str(ROOT), prepend=os.pathsep)
        # `python3` is the kernelspec ipykernel installs in the venv (sys.prefix/share/jupyter/kernels); its
        # argv starts with "python", which jupyter_client launches as sys.executable: the venv interpreter.
        client = NotebookClient(
            notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
        )
        started = time.perf_counter()
        client.execute()
        notebook.metadata["test_seconds"] = round(time.perf_counter() - started, 1)
    notebook.metadata["test_workdir"] = str(workdir)
    return notebook


def test_notebook_runs_on_the_venv_kernel_without_errors(executed: Any) -> None:
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert _text(_cell(executed, "kernel-check")).strip() == sys.prefix
    print(f"notebook executed in {executed.metadata.test_seconds} s")  # shown with -s or -rP


def test_notebook_seeds_and_reports_counts(executed: Any) -> None:
    assert f"seeded {SEED_CLAIMS} claims" in _text(_cell(executed, "setup"))
    assert f"source database: {NOTEBOOK_DB}" in _text(_cell(executed, "setup"))
    counts = re.search(r"claims read: (\d+), accepted: (\d+), rejected: (\d+)", _text(_cell(executed, "validate")))
    assert counts
    read, accepted, rejected = map(int, counts.groups())
    assert read == SEED_CLAIMS and accepted + rejected == read and 0 < rejected < read
    assert re.search(
        rf"claims \({SEED_CLAIMS}, {len(CLAIMS)}\), lines \(\d+, {len(LINES)}\)", _text(_cell(executed, "read"))
    )


def test_rejections_table_matches_the_api(executed: Any) -> None:
    """The printed rejections are exactly what the API computes on the same pending claims."""
    settings = ce.Settings(source_url=NOTEBOOK_URL)
    pending = ce.read_pending(settings)
    checked = ce.validate(pending.claims, pending.lines, ce.load_reference(settings), run_date=date.today())
    expected = dict(ce.rejections_by_rule(checked.rejected).iter_rows())
    shown = re.findall(r"│\s*(V\d\d)\s*┆\s*(\d+)\s*│", _text(_cell(executed, "rejections")))
    assert {rule: int(claims) for rule, claims in shown} == expected
    assert set(expected) == RULE_IDS  # the seed breaks every rule at least once


def test_notebook_draws_two_plots(executed: Any) -> None:
    for cell_id in ("rejections-plot", "facility-plot"):
        images = [output for output in _cell(executed, cell_id).outputs if "image/png" in output.get("data", {})]
        assert len(images) == 1, cell_id


def test_notebook_summaries_by_place_and_procedure(executed: Any) -> None:
    by_place = _text(_cell(executed, "by-place"))
    assert "place_of_service" in by_place and "allowed_share" in by_place
    top = _text(_cell(executed, "by-procedure"))
    assert "shape: (10, 5)" in top


def test_notebook_shows_the_release_and_factor_that_priced_each_line(executed: Any) -> None:
    assert "2026A" in _text(_cell(executed, "reference")) and "2025A" in _text(_cell(executed, "reference"))
    by_release = _text(_cell(executed, "by-release"))
    assert "rvu_release" in by_release and "cf_kind" in by_release
    assert "2025A" in by_release and "2026A" in by_release and "non_qp" in by_release


def test_notebook_is_read_only_and_shows_no_patient_ids(executed: Any) -> None:
    with psycopg.connect(NOTEBOOK_URL) as connection:
        statuses = connection.execute("SELECT status, count(*) FROM staging.claims GROUP BY status").fetchall()
        leases = connection.execute("SELECT count(*) FROM staging.range_leases").fetchone()
        warehouse = connection.execute("SELECT to_regnamespace('warehouse')").fetchone()
        patients = connection.execute("SELECT array_agg(patient_id) FROM staging.claims").fetchone()
    assert statuses == [("pending", SEED_CLAIMS)]
    assert leases == (0,)
    assert warehouse == (None,)
    shown = "".join(
        _text(cell) + "".join(output.get("data", {}).get("text/html", "") for output in cell.outputs)
        for cell in executed.cells
        if cell.cell_type == "code"
    )
    assert patients is not None
    assert not [patient for patient in patients[0] if patient in shown]
    assert list(Path(executed.metadata.test_workdir).iterdir()) == []  # no files left where the kernel ran


def test_notebook_shows_a_rules_file_changing_the_rejection_table(executed: Any) -> None:
    """The rules-file cell: the payer file's rejections are what the API gives under the same file."""
    text = _text(_cell(executed, "rules-file"))
    counts = re.search(r"rejected: (\d+) without the file, (\d+) with it; warnings on accepted claims: (\d+)", text)
    assert counts
    without, with_file, warnings = map(int, counts.groups())
    assert without != with_file and warnings > 0
    assert "payer file" in text and "BIG_UNITS" in text
