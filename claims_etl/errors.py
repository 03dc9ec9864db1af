"""The exception tree. Driver errors are mapped to these once, at the stage boundary.

    ClaimsEtlError
    ├── ConfigurationError        bad settings or usage                    exit 2
    ├── ReferenceFileError        a CMS file that does not fit its layout  exit 1, nothing loaded
    ├── AlertError                a run succeeded but an alert fired       exit 3, with --fail-on-alert
    ├── RecordNotWrittenError     a run ended, its --results file refused  exit 4 (a run that did not succeed: its own)
    ├── RunInterruptedError       SIGINT (Ctrl-C) or SIGTERM stopped a run exit 130 / 143 (128 + signal)
    └── StageError                a stage failed                           exit 1
        ├── SourceError           PostgreSQL staging (connectorx, psycopg)
        └── TargetError           the warehouse (turbodbc; psycopg for a URL)

`transient` marks errors worth retrying (connection dropped, deadlock); terminal ones never are.
Messages never carry credentials (see `scrub`) or PHI (messages name claim ids and rule ids only; a
driver's text loses the row values it echoes: `driver_message`).
"""

from __future__ import annotations

import re
import signal
import urllib.parse

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


# A key=value password (ODBC, libpq, a URL's query), its value read tolerantly: up to `;`, `&` or the end,
# braces or quotes even unclosed, so a malformed string still yields what a driver might echo.
_PASSWORD_VALUE = re.compile(r"(?:^|[;&?\s])(?:pwd|password|passwd)\s*=\s*(\{[^}]*\}?|'[^']*'?|[^;&]*)", re.I)
# Pieces shorter than this are not scrubbed on their own: they would blank ordinary words of a message.
_MIN_FRAGMENT = 3


def url_userinfo(url: str) -> str | None:
    """The user:password part of `scheme://user:password@host...`, found without parsing the URL: up to
    the LAST `@` before the query (an unencoded `@` in the password stays in it), or, when the password
    holds a `?`, the last `@` before the first `/` (an `@` in the path or query is not userinfo). None
    without `://` or such an `@`.

    >>> url_userinfo("postgresql://etl:Se@cret@db:5432/claims?sslmode=require")
    'etl:Se@cret'
    >>> url_userinfo("postgresql://etl:Se?cret@db/claims")
    'etl:Se?cret'
    >>> url_userinfo("postgresql://db/claims") is None
    True
    >>> url_userinfo("postgresql://db:5432/claims?application_name=etl@nightly") is None
    True
    """
    scheme, found, rest = url.partition("://")
    if not found or not scheme:
        return None
    head = rest.split("?", 1)[0]
    if "@" in head:
        return head.rpartition("@")[0] or None
    before_path = rest.split("/", 1)[0]
    return before_path.rpartition("@")[0] or None


# What a URL's user:password may not hold unencoded (RFC 3986 userinfo), as told to the user: the drivers
# split such a URL in the wrong place and echo the pieces (issue 29, item 3).
_USERINFO_PROBLEMS = (
    (re.compile(r"\s"), "a space (write %20)"),
    (re.compile(r"@"), "an @ (write %40)"),
    (re.compile(r"[/?#]"), "a / ? or # (write %2F, %3F, %23)"),
    (re.compile(r"%(?![0-9A-Fa-f]{2})"), "a % not followed by two hex digits (write % as %25)"),
)


def userinfo_problem(url: str) -> str | None:
    """Why a URL's user or password cannot be given to a driver as it is, in words that hold none of
    it; None when it can (or the URL has none).

    >>> userinfo_problem("postgresql://etl:Se@cret@db/claims")
    'an @ (write %40)'
    >>> userinfo_problem("postgresql://etl:Se%40cret@db/claims") is None
    True
    """
    userinfo = url_userinfo(url)
    if userinfo is None:
        return None
    return next((problem for pattern, problem in _USERINFO_PROBLEMS if pattern.search(userinfo)), None)


def connection_secrets(text: str) -> list[str]:
    """Every form in which a driver could echo the passwords of a connection URL or ODBC/libpq string,
    longest first: as written, percent-decoded, and their pieces between `@`, `/` or whitespace
    (a driver that mis-splits a malformed URL prints a piece, such as the host it thinks follows an `@`).
    Read without a real parser, so a string no driver accepts still yields its password.

    >>> connection_secrets("postgresql://etl:Se%40cr et@db/claims")
    ['Se%40cr et', 'Se@cr et', 'Se%40cr']
    """
    userinfo = url_userinfo(text)
    passwords = [userinfo.partition(":")[2]] if userinfo and ":" in userinfo else []
    passwords += [match.group(1).strip("{}'") for match in _PASSWORD_VALUE.finditer(text)]
    forms = {form for password in passwords if password for form in (password, urllib.parse.unquote(password))}
    pieces = {piece for form in forms for piece in re.split(r"[@/\s]+", form) if len(piece) >= _MIN_FRAGMENT}
    return sorted(forms | pieces, key=lambda form: (-len(form), form))


def scrub(text: str, *secrets: str | None) -> str:
    """Remove passwords from a driver message: known secret values (for a connection string, also the
    passwords it holds, in every form `connection_secrets` finds), URL userinfo and PWD= pairs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            for password in connection_secrets(secret):
                text = text.replace(password, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# A driver's text is cut into fields at these labels (libpq's DETAIL, HINT, QUERY, CONTEXT lines; psqlODBC
# passes them on): a value the server quotes can span lines, never fields.
_FIELD = re.compile(r"\n(?=[ \t]*(?:DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT):)")
# PostgreSQL's DETAIL field carries the row: "Key (claim_id)=(7) already exists", "Failing row contains (...)".
_DETAIL = re.compile(r"[ \t]*DETAIL:")
# Where a value a server quotes in its message starts: after a colon (PostgreSQL's `invalid input syntax
# for type integer: "x"`, its COPY context `column units: "x"` or `line 3: "<the row's line>"`; MariaDB's
# `Incorrect date value: 'x' for column ...`), or after `value` or `entry` (PostgreSQL's `value "x" is out
# of range for type integer`, MariaDB's `Duplicate entry 'x' for key ...`). Identifiers the servers quote
# (`column "x" of relation "t"`, `column 'x'`, `key 'PRIMARY'`) follow other words and stay.
_VALUE_START = re.compile(r"(?:(?<=:)|\bvalue|\bentry)[ \t]+(?P<quote>[\"'])", re.IGNORECASE)
# Where it ends: at the last quote of its field that the sentence goes on from (` for column`, ` is out
# of range`), else at the last one that ends a line; so a value holding quotes or line breaks goes whole.
_VALUE_END = {
    quote: (re.compile(quote + r"(?=[ \t]+(?:for|is)\b)", re.IGNORECASE), re.compile(quote + r"(?=;?[ \t]*(?:\n|\Z))"))
    for quote in "\"'"
}
# The bytes of a character an encoding refused (`invalid byte sequence for encoding "UTF8": 0xe9 0x20`).
_BYTES = re.compile(r"\b0x[0-9a-f]{2}(?:[ \t]+0x[0-9a-f]{2})*\b", re.IGNORECASE)


def without_values(text: str) -> str:
    """A driver's error text without the row values it echoes (PHI): PostgreSQL's DETAIL lines go, a
    quoted value becomes `"***"`, an invalid character's bytes `0x**`. The SQLSTATE, the primary
    message, the table and column names stay.

    >>> print(without_values('value "1099511627776" is out of range\\nCONTEXT:  COPY t, line 1, column n: "10995"'))
    value "***" is out of range
    CONTEXT:  COPY t, line 1, column n: "***"
    >>> print(without_values('null value in column "n"\\nDETAIL:  Failing row (1, Ann).\\nCONTEXT:  line 1: "1,"Ann",'))
    null value in column "n"
    CONTEXT:  line 1: "***"
    >>> without_values("message: [ma-3.1.15]Incorrect date value: '2024-13-01' for column `db`.`t`.`d` at row 1")
    "message: [ma-3.1.15]Incorrect date value: '***' for column `db`.`t`.`d` at row 1"
    >>> without_values("message: [ma-3.1.15]Duplicate entry '7-O'Hara' for key 'PRIMARY'")
    "message: [ma-3.1.15]Duplicate entry '***' for key 'PRIMARY'"
    """
    fields = [field for field in _FIELD.split(text) if not _DETAIL.match(field)]
    return "\n".join(_BYTES.sub("0x**", _hide_quoted_values(field)) for field in fields)


def _hide_quoted_values(field: str) -> str:
    """Each quoted value of one field of a driver's text as `"***"` (`_VALUE_START`, `_VALUE_END`); one
    whose closing quote cannot be found hides the rest of the field."""
    kept, at = [], 0
    while (start := _VALUE_START.search(field, at)) is not None:
        quote = start.group("quote")
        sentence, line = _VALUE_END[quote]
        ends = list(sentence.finditer(field, start.end())) or list(line.finditer(field, start.end()))
        kept.append(f"{field[at : start.end()]}***{quote}")
        at = ends[-1].end() if ends else len(field)
    return "".join(kept) + field[at:]


def driver_message(text: str, *secrets: str | None) -> str:
    """A driver's error text as an error of the engine may carry it (logged, on stderr, in etl_runs, in a
    quarantine reason): without passwords (`scrub`) and without row values (`without_values`)."""
    return without_values(scrub(text, *secrets))


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


class RecordNotWrittenError(ClaimsEtlError):
    """`run --results FILE`: the run ended, but its record could not be written then (the disk full, the
    directory removed or made read-only during the run). Exit 4 after a succeeded run; after one that
    did not succeed, that run's own exit code, which says more (its own line comes first)."""

    exit_code = 4


class RunInterruptedError(ClaimsEtlError):
    """SIGINT (Ctrl-C) or SIGTERM stopped a run (claims_etl/engine/stopping.py). `forced`: a second
    signal stopped it at once, not at a chunk boundary. Exit 128 + the signal's number, as a shell
    reports a process a signal ended: 130 for SIGINT, 143 for SIGTERM."""

    def __init__(self, signum: int, forced: bool = False) -> None:
        name = signal.Signals(signum).name
        if forced:
            what = (
                f"stopped at once by a second {name}: a chunk not committed rolled back, one committed "
                "and not yet marked is recovered by the next run"
            )
        else:
            what = (
                f"stopped by {name} at a chunk boundary: every chunk written is committed and marked; "
                "the next run takes the claims left pending"
            )
        super().__init__(what)
        self.signum, self.forced, self.exit_code = signum, forced, 128 + signum

    def __reduce__(self) -> tuple[type[RunInterruptedError], tuple[int, bool]]:
        """Rebuilt from its fields (a Dask task's error reaches the driver intact)."""
        return type(self), (self.signum, self.forced)


class ReferenceFileError(ClaimsEtlError):
    """A CMS reference file that does not fit its published layout; nothing was loaded."""


class StageError(ClaimsEtlError):
    """A stage failed; `stage` names it."""

    stage: str

    def __init__(self, stage: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage, self.message, self.transient = stage, message, transient

    def __reduce__(self) -> tuple[type[StageError], tuple[str, str], dict[str, object]]:
        """Rebuilt from its fields, not its text: a Dask task's error reaches the driver intact."""
        return type(self), (self.stage, self.message), {"transient": self.transient}


class SourceError(StageError):
    """The PostgreSQL staging database failed or could not be reached."""


# turbodbc's "state: 22001", arrow-odbc's "State: 22001"
_SQLSTATE = re.compile(r"\bstate: ?([0-9A-Z]{5})\b", re.IGNORECASE)


def odbc_sqlstate(text: str) -> str | None:
    """The SQLSTATE in an ODBC error's text, if any.

    >>> odbc_sqlstate("ODBC error\\nstate: 42S02\\nnative error code: 1146\\nmessage: no table")
    '42S02'
    """
    found = _SQLSTATE.search(text)
    return found.group(1).upper() if found else None


class TargetError(StageError):
    """The warehouse (ODBC, or PostgreSQL by URL) failed or could not be reached. `sqlstate` is the one
    the warehouse answered, and `packet_refused` whether it refused a packet over its size limit
    (targets/packets.py), both recorded where the driver's error becomes this one (never read later from
    the exception's context, which a re-raise inside another handler replaces)."""

    def __init__(
        self,
        stage: str,
        message: str,
        *,
        transient: bool = False,
        sqlstate: str | None = None,
        packet_refused: bool = False,
    ) -> None:
        super().__init__(stage, message, transient=transient)
        self.sqlstate = sqlstate
        self.packet_refused = packet_refused

    def __reduce__(self) -> tuple[type[StageError], tuple[str, str], dict[str, object]]:
        """Rebuilt from its fields, its SQLSTATE and packet refusal too (a writer process's or Dask task's error)."""
        fields: dict[str, object] = {
            "transient": self.transient,
            "sqlstate": self.sqlstate,
            "packet_refused": self.packet_refused,
        }
        return type(self), (self.stage, self.message), fields

    @property
    def refused_value(self) -> bool:
        """Whether the warehouse refused a value of the rows (SQLSTATE class 22, a data exception, or 23,
        an integrity constraint), not the connection or the server failing: a claim's fault, not the run's.

        >>> TargetError("load", "insert failed", sqlstate="22003").refused_value
        True
        >>> TargetError("load", "insert failed: server closed the connection", transient=True).refused_value
        False
        """
        return self.sqlstate is not None and self.sqlstate[:2] in ("22", "23")
