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

The copy's path is this machine's alone: the variables the user set are kept beside it
(settings.ODBC_USER_VARIABLE), and settings read those, never the copy's path, so what travels to a
Dask worker on another machine is the user's ODBCSYSINI, from which the worker makes its own copy.
unixODBC reads the location once per process, at its first call: a process pointed at a copy without
the drivers could never connect. So a system file that is not where the settings say (another
machine's layout) is taken from where this process's own variables say instead, and the copy is
remembered per source, never once for the process whatever the settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from claims_etl.settings import ODBC_USER_VARIABLE, Settings, user_odbc_variables

log = logging.getLogger(__name__)
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_TRACE_KEY = re.compile(r"^\s*(?:force)?trace\w*\s*=", re.I)  # Trace, TraceFile, TraceLibrary, ForceTrace
# The private copy made, by the system file it copies: a call with the same source reuses it.
_configured: tuple[Path, Path] | None = None


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


def system_file(settings: Settings) -> Path:
    """The system odbcinst.ini to copy: where the settings say (the user's ODBCSYSINI and ODBCINSTINI),
    or, when there is none there (settings made on another machine), where this process's own
    variables say (default /etc/odbcinst.ini)."""
    named = Path(settings.odbc_sysini) / settings.odbc_instini
    if named.exists():
        return named
    own = user_odbc_variables(os.environ)
    return Path(own["ODBCSYSINI"] or "/etc") / (own["ODBCINSTINI"] or "odbcinst.ini")


def use_private_config(settings: Settings) -> Path | None:
    """Point this process's unixODBC at a copy of its configuration with tracing off (idempotent for
    one source). Returns the directory, or None where the configuration cannot be copied (then unixODBC
    reads its own, and a debug line says so)."""
    global _configured  # noqa: PLW0603  (per process, as unixODBC reads the variables)
    source = system_file(settings)
    if _configured is not None and _configured[0] == source:
        return _configured[1]
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    except OSError as error:
        log.debug("unixODBC configuration not copied, tracing as configured: %s", error.strerror)
        return None
    content = without_tracing(text)
    system_dsns = (source.parent / "odbc.ini").resolve()
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
    # The user's values first (through any earlier redirection, a parent's): settings read them.
    os.environ[ODBC_USER_VARIABLE] = json.dumps(user_odbc_variables(os.environ) | {"private": str(directory)})
    os.environ["ODBCSYSINI"] = str(directory)  # read by unixODBC, in this process and its children
    os.environ["ODBCINSTINI"] = "odbcinst.ini"
    _configured = (source, directory)
    return directory
