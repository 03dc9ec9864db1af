"""The exception tree. Driver errors are mapped to these once, at the stage boundary.

    ClaimsEtlError
    ├── ConfigurationError        bad settings or usage                    exit 2
    ├── ReferenceFileError        a CMS file that does not fit its layout  exit 1, nothing loaded
    ├── AlertError                a run succeeded but an alert fired       exit 3, with --fail-on-alert
    └── StageError                a stage failed                           exit 1
        ├── SourceError           PostgreSQL staging (connectorx, psycopg)
        └── TargetError           the warehouse (turbodbc; psycopg for a URL)

`transient` marks errors worth retrying (connection dropped, deadlock); terminal ones never are.
Messages never carry credentials (see `scrub`) or PHI (messages name claim ids and rule ids only).
"""

from __future__ import annotations

import re

_SECRET_PATTERNS = (
    # URL userinfo: scheme://user:password@host
    (
        re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@\s]*@", re.I),
        r"\g<scheme>\g<user>:***@",
    ),
    # ODBC / libpq key=value secrets: PWD=...; Password=...; password='...'
    (
        re.compile(r"(?P<key>\b(?:pwd|password|passwd)\s*=\s*)(?:\{[^}]*\}|'[^']*'|[^;\s]*)", re.I),
        r"\g<key>***",
    ),
)


# A password that is there (not an empty PWD=): URL userinfo, or a key=value pair (ODBC, libpq, URL query).
_PASSWORD_GIVEN = (
    re.compile(r"[a-z][a-z0-9+.\-]*://[^:/@\s]*:[^@\s]+@", re.I),
    re.compile(r"(?:^|[;&?\s])(?:pwd|password|passwd)\s*=\s*(?:\{[^}]+\}|'[^']+'|[^;&\s'{][^;&\s]*)", re.I),
)


def carries_password(text: str) -> bool:
    """Whether a connection URL or ODBC string holds a password.

    >>> carries_password("postgresql://etl:s3cret@db/claims"), carries_password("Driver={X};UID=etl;PWD={a;b}")
    (True, True)
    >>> carries_password("postgresql://etl@db/claims"), carries_password("Driver={X};User=etl;Password=;")
    (False, False)
    """
    return any(pattern.search(text) for pattern in _PASSWORD_GIVEN)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove passwords from a driver message: known secret values, URL userinfo and PWD= pairs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ClaimsEtlError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1
    transient = False
    # Where it happened, for the failure log line (ops/logs.failed): set as it leaves a stage or a run.
    run_id: str | None = None
    stage: str | None = None


class ConfigurationError(ClaimsEtlError):
    """Settings or usage that cannot work (bad connection string, unknown dialect)."""

    exit_code = 2


class AlertError(ClaimsEtlError):
    """`run --fail-on-alert`: the run succeeded (everything loaded and marked) but an alert fired."""

    exit_code = 3


class ReferenceFileError(ClaimsEtlError):
    """A CMS reference file that does not fit its published layout; nothing was loaded."""


class StageError(ClaimsEtlError):
    """A stage failed; `stage` names it."""

    stage: str

    def __init__(self, stage: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage, self.message, self.transient = stage, message, transient

    def __reduce__(self) -> tuple[type[StageError], tuple[str, str], dict[str, bool]]:
        """Rebuilt from its fields, not its text: a Dask task's error reaches the driver intact."""
        return type(self), (self.stage, self.message), {"transient": self.transient}


class SourceError(StageError):
    """The PostgreSQL staging database failed or could not be reached."""


class TargetError(StageError):
    """The warehouse (ODBC, or PostgreSQL by URL) failed or could not be reached."""
