"""Fault points as hooks passed down a run (claims_etl/faults.py): none in production, where the fault
settings are ignored with one warning that names no value; the crash tests' hooks
(claims_etl/dev/fault_hooks.py) pickle to writer processes and Dask workers, fire only at their point,
and are what the development entry installs. Their kills are tried in tests/integration/crash/."""

from __future__ import annotations

import ast
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

import claims_etl
from claims_etl import faults
from claims_etl.dev import fault_hooks
from claims_etl.settings import Settings

PACKAGE = Path(claims_etl.__file__).parent


@pytest.fixture
def nothing_installed() -> Iterator[None]:
    yield
    faults._installed = None  # a test that installs hooks leaves none behind


def test_a_plain_run_ignores_fault_settings_with_one_warning(
    caplog: pytest.LogCaptureFixture, nothing_installed: None
) -> None:
    with caplog.at_level(logging.WARNING, logger="claims_etl.faults"):
        hooks = faults.for_entry(Settings(fault="after_commit:2", fault_pause=3.0))
    assert hooks is faults.no_faults
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "ignored" in caplog.text and "after_commit" not in caplog.text
    caplog.clear()
    assert faults.for_entry(Settings()) is faults.no_faults and not caplog.records  # nothing asked, nothing said


def test_the_development_entry_s_hooks_fire_the_settings(nothing_installed: None) -> None:
    faults.install(fault_hooks.from_settings)
    hooks = faults.for_entry(Settings(fault="pause_before_write:3", fault_pause=0.0))
    assert hooks == fault_hooks.FaultHooks("pause_before_write:3", 0.0, None)
    assert faults.for_entry(Settings()) is faults.no_faults


def test_the_hooks_pickle_and_fire_only_at_their_point(tmp_path: Path) -> None:
    once = tmp_path / "fired"
    hooks = fault_hooks.from_settings(Settings(fault="pause_after_read", fault_once_file=str(once)))
    in_writer = pickle.loads(pickle.dumps(hooks.in_writer(run_pid=12345)))
    assert in_writer == fault_hooks.FaultHooks("pause_after_read", 0.0, str(once), run_pid=12345)
    in_writer("after_commit", 1)  # another point: nothing happens, the once file is not taken
    assert not once.exists()
    in_writer("pause_after_read")  # its point: a pause of 0 s, the once file taken
    assert once.exists()
    assert pickle.loads(pickle.dumps(faults.no_faults)).in_writer(1) == faults.no_faults


def test_no_module_outside_dev_imports_it() -> None:
    """Production code gets its fault points passed in; only claims_etl.dev builds real ones."""
    importers = []
    for path in PACKAGE.rglob("*.py"):
        if "dev" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module == "claims_etl.dev":
                names += [f"claims_etl.dev.{alias.name}" for alias in node.names]
            if any(name.startswith(("claims_etl.dev.fault_hooks", "claims_etl.dev.faulty")) for name in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert importers == []
