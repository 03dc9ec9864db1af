"""A private unixODBC configuration with tracing off, for every warehouse connection of the process.

unixODBC's trace (every ODBC call with its arguments: statements and claim data) is switched on by
`Trace=Yes` in the `[ODBC]` section of odbcinst.ini, which unixODBC reads from the system file
(`$ODBCSYSINI/$ODBCINSTINI`, /etc/odbcinst.ini by default) and then from the user's ~/.odbcinst.ini,
skipping any section the system file already has. No connection-string attribute turns it off, so
before its first ODBC call the process points `ODBCSYSINI` at a private copy of the system file whose
`[ODBC]` section says `Trace=No`: a trace asked for in either file is not written. Drivers resolve as
before (their sections are copied, the user's file is still read), and so do system data sources (the
private directory links the system odbc.ini).

The copy lives in a directory of the user's own under the temporary directory, named by a digest of
its content, so every run of the same configuration shares one (a SIGKILLed run leaves nothing new).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from claims_etl.settings import Settings

log = logging.getLogger(__name__)
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_TRACE_KEY = re.compile(r"^\s*(?:force)?trace\w*\s*=", re.I)  # Trace, TraceFile, TraceLibrary, ForceTrace
_configured: Path | None = None  # once per process: unixODBC reads the locations once, at its first call


def without_tracing(odbcinst: str) -> str:
    """odbcinst.ini text with `Trace=No` as the only tracing entry of its `[ODBC]` section (added if
    it has none); every other line as it was.

    >>> print(without_tracing("[ODBC]\\nTrace = Yes\\nTraceFile=/tmp/sql.log\\n\\n[MariaDB]\\nDriver=libmaodbc.so\\n"))
    [ODBC]
    Trace=No
    <BLANKLINE>
    [MariaDB]
    Driver=libmaodbc.so
    <BLANKLINE>
    """
    lines, in_odbc, has_odbc = [], False, False
    for line in odbcinst.splitlines():
        section = _SECTION.match(line)
        if section:
            in_odbc = section.group("name").strip().lower() == "odbc"
            lines.append(line)
            if in_odbc and not has_odbc:
                lines.append("Trace=No")
            has_odbc = has_odbc or in_odbc
        elif not (in_odbc and _TRACE_KEY.match(line)):
            lines.append(line)
    if not has_odbc:
        lines = ["[ODBC]", "Trace=No", "", *lines]
    return "\n".join(lines) + "\n"


def _private_base() -> Path:
    """The user's own directory for private configurations: created 0700, and refused (for a fresh
    one of mkdtemp) if another user could have planted it."""
    base = Path(tempfile.gettempdir()) / f"claims-etl-odbc-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return base
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="claims-etl-odbc-"))


def use_private_config(settings: Settings) -> Path | None:
    """Point this process's unixODBC at a copy of its configuration with tracing off (idempotent).
    Returns the directory, or None where the configuration cannot be copied (then unixODBC reads its
    own, and a debug line says so)."""
    global _configured  # noqa: PLW0603  (per-process: unixODBC itself reads the variables once)
    if _configured is not None:
        return _configured
    system = Path(settings.odbc_sysini)
    try:
        text = (system / settings.odbc_instini).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    except OSError as error:
        log.debug("unixODBC configuration not copied, tracing as configured: %s", error.strerror)
        return None
    content = without_tracing(text)
    system_dsns = (system / "odbc.ini").resolve()
    digest = hashlib.sha256(f"{content}\0{system_dsns}".encode()).hexdigest()[:16]
    directory = _private_base() / digest
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        staged = directory / f"odbcinst.ini.{os.getpid()}"
        staged.write_text(content, encoding="utf-8")
        staged.replace(directory / "odbcinst.ini")  # atomic: concurrent runs write the same content
        link = directory / "odbc.ini"
        if system_dsns.exists() and not link.is_symlink() and system_dsns.parent != directory:
            with contextlib.suppress(FileExistsError):  # another run linked it a moment ago
                link.symlink_to(system_dsns)
    except OSError as error:
        log.debug("unixODBC configuration not copied, tracing as configured: %s", error.strerror)
        return None
    os.environ["ODBCSYSINI"] = str(directory)  # read by unixODBC, in this process and its children
    os.environ["ODBCINSTINI"] = "odbcinst.ini"
    _configured = directory
    return directory
