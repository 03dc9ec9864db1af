"""The private unixODBC configuration (claims_etl/targets/odbc_config.py) and what settings carry to other
machines (issue 29, item 10a): settings read after a process pointed ODBCSYSINI at its private copy
hold the user's value, never that copy's path, and a process given a path that does not exist where
it runs (another machine's copy) copies its own system file, drivers included, not an empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims_etl.settings import ODBC_USER_VARIABLE, Settings
from claims_etl.targets import odbc_config

DRIVERS = "[ODBC]\nTrace=Yes\n\n[Some Driver]\nDriver=/usr/lib/libsome.so\n"


@pytest.fixture
def user_odbc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's ODBCSYSINI with one driver; the variables and this process's copy restored afterwards."""
    directory = tmp_path / "odbc"
    directory.mkdir()
    (directory / "odbcinst.ini").write_text(DRIVERS, encoding="utf-8")
    monkeypatch.setenv("ODBCSYSINI", str(directory))
    monkeypatch.delenv("ODBCINSTINI", raising=False)
    monkeypatch.delenv(ODBC_USER_VARIABLE, raising=False)
    monkeypatch.setattr(odbc_config, "_configured", None)
    return directory


def test_settings_read_after_the_redirection_hold_the_users_odbcsysini(user_odbc: Path) -> None:
    private = odbc_config.use_private_config(Settings())
    assert private is not None and private != user_odbc
    assert (Settings().odbc_sysini, Settings().odbc_instini) == (str(user_odbc), "odbcinst.ini")
    assert "[Some Driver]" in (private / "odbcinst.ini").read_text(encoding="utf-8")
    # A second copy from other settings (a later task's) keeps the user's values, not the first copy's path.
    again = odbc_config.use_private_config(Settings(ODBCSYSINI=str(private)))  # type: ignore[call-arg]
    assert again is not None and Settings().odbc_sysini == str(user_odbc)


def test_a_path_of_another_machine_copies_this_machines_own_system_file(user_odbc: Path) -> None:
    elsewhere = Settings(ODBCSYSINI="/nonexistent/claims-etl-odbc-0/0123456789abcdef")  # type: ignore[call-arg]
    private = odbc_config.use_private_config(elsewhere)
    assert private is not None
    copied = (private / "odbcinst.ini").read_text(encoding="utf-8")
    assert "[Some Driver]" in copied and "Trace=No" in copied and "Trace=Yes" not in copied
    assert Settings().odbc_sysini == str(user_odbc)
