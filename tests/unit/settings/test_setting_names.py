"""Every `CLAIMS_ETL_*` name the engine prints (error lines, warnings, help) is a real variable: a typo
such as `CLAIMS_ETL_SOURCEREPLY_TIMEOUT_SETTING_SECONDS` (issue 29, item 9) sent operators looking for
a setting that does not exist, and its only test ran under `-m slow`. Read from the source, no database."""

from __future__ import annotations

import re
from pathlib import Path

import claims_etl
from claims_etl.db.source import _SOURCE_TIMEOUTS, REPLY_TIMEOUT_SETTING
from claims_etl.settings import Settings

PACKAGE = Path(claims_etl.__file__).parent
NAME = re.compile(r"\bCLAIMS_ETL_[A-Z0-9_]*[A-Z0-9]\b")
# Names that are families or prefixes in prose (`CLAIMS_ETL_SOURCE_{CONNECT,...}`), not one variable.
PREFIXES = ("CLAIMS_ETL_TCP_KEEPALIVES",)


def _variables() -> set[str]:
    fields = {f"CLAIMS_ETL_{name.upper()}" for name in Settings.model_fields}
    return fields | {f"{name}_FILE" for name in fields}


def test_every_variable_named_in_the_package_is_a_setting() -> None:
    variables = _variables()
    named = {
        (path.relative_to(PACKAGE).as_posix(), name)
        for path in PACKAGE.rglob("*.py")
        for name in NAME.findall(path.read_text(encoding="utf-8"))
    }
    unknown = sorted((where, name) for where, name in named if name not in variables and not name.startswith(PREFIXES))
    assert unknown == []


def test_the_timeout_errors_name_their_settings() -> None:
    variables = _variables()
    assert REPLY_TIMEOUT_SETTING == "CLAIMS_ETL_SOURCE_REPLY_TIMEOUT_SECONDS"
    assert {setting for _, setting in _SOURCE_TIMEOUTS} <= variables
