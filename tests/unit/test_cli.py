"""The command line without a database: a bad setting is a usage error, an unreachable source exits 1, each
in one clear line without the password (docs/spec.md §6); the commands on the real databases are in
tests/integration/test_cli.py."""

from __future__ import annotations

import subprocess
import sys

from tests.factories import RUN_DATE

PASSWORD = "s3cr3t-Pa55"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "CLAIMS_ETL_RUN_DATE": RUN_DATE.isoformat(),
        "CLAIMS_ETL_LOG_FORMAT": "console",  # `error: ...` lines (a captured stderr gets JSON by default)
    } | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "claims_etl", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_unreachable_source_exits_1_without_the_password() -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/claims_etl"
    result = cli("seed", "--claims", "1", env={"CLAIMS_ETL_SOURCE_URL": url})
    assert_one_clear_line(result, 1, "cannot reach the source database")


def test_bad_setting_is_a_usage_error() -> None:
    result = cli("run", env={"CLAIMS_ETL_PARTITIONS": "zero"})
    assert_one_clear_line(result, 2, "partitions")
