"""The log line formats and the Prometheus textfile without a database: JSON lines carry the run id and
the records' fields, the failure line names run, stage, error class and exit code; the textfile has
HELP and TYPE on every metric a run can write, and counts over a million exactly."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from claims_etl.errors import ConfigurationError, SourceError
from claims_etl.ops import logs
from claims_etl.ops.metrics import HELP, RunMetrics, Sample, previous_value, registry, write_textfile
from claims_etl.ops.timing import StageRecord, StageTimer

UNREACHABLE_TARGET = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=x;Uid=etl"


@pytest.fixture
def restored_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`logs.configure` changes process-wide logging: put it back as it was."""
    root, package = logging.getLogger(), logging.getLogger("claims_etl")
    handlers, root_level, package_level = root.handlers[:], root.level, package.level
    monkeypatch.setattr(logs, "_format", logs.current_format())
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    package.setLevel(package_level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restored_logging")
def test_json_lines_carry_the_run_id_and_each_stages_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert logs.configure("auto") == "json"  # stderr is not a terminal here
    capsys.readouterr()
    logging.getLogger("claims_etl.engine.run").warning("before the run")
    with logs.run_context("20261202T000000-abc"), StageTimer().stage("price", rows_in=7) as stage:
        stage.rows_out = 5
    logging.getLogger("claims_etl.engine.run").debug("not shown without --verbose")
    before, started, finished = _lines(capsys.readouterr().err)
    assert before["event"] == "before the run" and "run_id" not in before and before["level"] == "warning"
    assert started["event"] == "stage started" and started["run_id"] == "20261202T000000-abc"
    assert finished["run_id"] == "20261202T000000-abc" and finished["logger"] == "claims_etl.ops.timing"
    assert (finished["stage"], finished["rows_in"], finished["rows_out"], finished["outcome"]) == ("price", 7, 5, "ok")
    assert isinstance(finished["seconds"], float) and "timestamp" in finished


@pytest.mark.usefixtures("restored_logging")
def test_the_failure_line_names_the_run_the_stage_the_class_and_the_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")
    with pytest.raises(ConfigurationError) as raised, logs.run_context("run-1"), StageTimer().stage("lease"):
        raise ConfigurationError("no fee schedule release in force")
    assert (raised.value.run_id, raised.value.stage) == ("run-1", "lease")
    with pytest.raises(SourceError) as named, StageTimer().stage("load"):
        raise SourceError("extract", "cannot reach the source database")
    assert named.value.stage == "extract"  # a stage error keeps the stage it names
    capsys.readouterr()
    logs.failed(raised.value, "no fee schedule release in force")
    (line,) = _lines(capsys.readouterr().err)
    assert line["event"] == "failed" and line["level"] == "error"
    assert (line["run_id"], line["stage"], line["error_class"], line["exit_code"]) == (
        "run-1",
        "lease",
        "ConfigurationError",
        2,
    )


@pytest.mark.usefixtures("restored_logging")
def test_console_lines_are_not_json_and_carry_the_run_id(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console", verbose=True)
    capsys.readouterr()
    with logs.run_context("run-2"):
        logging.getLogger("claims_etl.x").info("alert %s: %s", "cpu_high", "CPU above limit")
    (line,) = [each for each in capsys.readouterr().err.splitlines() if each.strip()]
    assert not line.startswith("{") and "alert cpu_high: CPU above limit" in line and "run_id=run-2" in line


def test_counts_over_a_million_are_written_exactly(tmp_path: Path) -> None:
    """`:.6g` wrote 1,234,567 as 1.23457e+06; prometheus_client keeps every digit."""
    path = tmp_path / "claims_etl.prom"
    samples = [
        Sample("claims_etl_claims_read", 1_234_567),
        Sample("claims_etl_run_claims", 1_234_567, {"outcome": "priced"}),
        Sample("claims_etl_run_claims", 98_765_432_101, {"outcome": "rejected"}),
        Sample("claims_etl_rejections", 1_000_001, {"rule": "V01"}),
    ]
    write_textfile(str(path), samples)
    text = path.read_text()
    assert "1.23457e+06" not in text
    values = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values == {
        ("claims_etl_claims_read", ()): 1_234_567,
        ("claims_etl_run_claims", ("priced",)): 1_234_567,
        ("claims_etl_run_claims", ("rejected",)): 98_765_432_101,
        ("claims_etl_rejections", ("V01",)): 1_000_001,
    }
    assert previous_value(str(path), "claims_etl_claims_read") == 1_234_567
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims_etl.prom"]  # no temporary file left


def test_every_metric_a_run_can_write_has_help_and_type() -> None:
    metrics = RunMetrics(
        claims_read=10,
        claims_rejected=2,
        seconds=1.5,
        chunk_seconds=[0.1, 0.2],
        rejections_by_rule={"V01": 2},
        warnings_by_rule={"W01": 1},
        cache={"hit_rate": 1.0, "seconds": 0.01},
        connections={"source": {"used": 4, "configured": 20}, "target": {"used": 1, "configured": 4}},
        ranges=[{"range": 1, "worker": "host:1", "attempt": 1, "claims": 10, "seconds": {"load": 0.5}}],
    )
    stages = [StageRecord("load", rows_in=10, rows_out=10, seconds=0.5)]
    samples = metrics.samples(stages, succeeded=False, claims={"priced": 8, "rejected": 2})
    samples.append(Sample("claims_etl_last_success_timestamp_seconds", 1.7e9))
    families = list(text_string_to_metric_families(_exposition(samples)))
    assert {family.name for family in families} == set(HELP)
    assert all(family.documentation == HELP[family.name] for family in families)
    kinds = {family.name: family.type for family in families}
    assert {name for name, kind in kinds.items() if kind != "gauge"} == {"claims_etl_chunk_seconds"}
    assert kinds["claims_etl_chunk_seconds"] == "summary"


def _run_samples() -> list[Sample]:
    metrics = RunMetrics(
        claims_read=10,
        claims_rejected=2,
        seconds=1.5,
        chunk_seconds=[0.1, 0.2, 0.4],
        rejections_by_rule={"V01": 2},
        cache={"hit_rate": 0.5, "seconds": 0.01},
        cpu_percent_max=100.0,
        cpu_percent_mean=50.0,
        memory_percent_max=25.0,
        rss_bytes_max=2**30,
        connections={"source": {"used": 4, "configured": 20}},
        ranges=[{"range": 1, "worker": "host:4242", "attempt": 1, "claims": 10, "seconds": {"load": 0.5}}],
    )
    stages = [StageRecord("load", rows_in=10, rows_out=10, seconds=0.5)]
    return metrics.samples(stages, succeeded=True, claims={"priced": 8, "rejected": 2})


# Put in the virtualenv by `make setup` (scripts/bootstrap.sh), from Debian's prometheus package.
PROMTOOL = shutil.which("promtool", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool: run make setup")
def test_the_textfile_passes_promtool_and_holds_ratios_and_no_per_run_series(tmp_path: Path) -> None:
    """Prometheus' own linter on the textfile a run writes: no `_total` on a gauge, no `quantile` label
    outside a summary; shares are 0..1 ratios; a range's worker (a new series every run) stays out."""
    path = tmp_path / "claims_etl.prom"
    write_textfile(str(path), _run_samples())
    text = path.read_text()
    linted = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert linted.returncode == 0 and linted.stdout + linted.stderr == "", linted.stdout + linted.stderr
    values = {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}
    assert values["claims_etl_rejected_ratio"] == 0.2 and values["claims_etl_cache_hit_ratio"] == 0.5
    assert (values["claims_etl_cpu_usage_max_ratio"], values["claims_etl_memory_usage_max_ratio"]) == (1.0, 0.25)
    assert (values["claims_etl_chunk_seconds_count"], values["claims_etl_chunk_seconds_sum"]) == (3, 0.7000000000000001)
    assert "percent" not in text and "worker=" not in text and "claims_etl_range_stage_seconds" not in text
    assert 'claims_etl_chunk_seconds{quantile="0.5"} 0.2' in text


def _exposition(samples: list[Sample]) -> str:
    return generate_latest(registry(samples)).decode()


def test_a_missing_or_unreadable_textfile_has_no_previous_value(tmp_path: Path) -> None:
    assert previous_value(str(tmp_path / "absent.prom"), "claims_etl_run_success") is None
    garbage = tmp_path / "garbage.prom"
    garbage.write_bytes(b"\xff\xfe not a metric {")
    assert previous_value(str(garbage), "claims_etl_run_success") is None


def test_a_bad_setting_off_a_terminal_is_one_json_line() -> None:
    """The settings cannot be read, so no run: the line still says what failed, as JSON (auto)."""
    result = subprocess.run(
        [sys.executable, "-m", "claims_etl", "run"],
        env={"PATH": "/usr/bin:/bin", "CLAIMS_ETL_PARTITIONS": "zero"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = _lines(result.stderr)
    assert (line["event"], line["error_class"], line["exit_code"], line["run_id"]) == (
        "failed",
        "ConfigurationError",
        2,
        None,
    )
    assert "partitions" in str(line["error"])


def test_in_json_the_password_flag_warning_and_the_error_are_json_lines_without_the_password() -> None:
    secret = "W4rn-Js0n_pw"
    result = subprocess.run(
        [sys.executable, "-m", "claims_etl", "run", "--log-format", "json", "--source-url",
         f"postgresql://etl:{secret}@127.0.0.1:1/claims"],
        env={"PATH": "/usr/bin:/bin", "CLAIMS_ETL_TARGET_ODBC": UNREACHABLE_TARGET},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    warning, closing, failure = _lines(result.stderr)
    assert warning["level"] == "warning" and "--source-url carries a password" in str(warning["event"])
    # the run's closing event even for a run that failed before its first stage, then the failure line
    assert (closing["event"], closing["outcome"], closing["error_class"]) == ("run finished", "failed", "SourceError")
    # the source is reached first (the run's first statement is its run lock): its error names no password
    assert (failure["event"], failure["error_class"], failure["exit_code"]) == ("failed", "SourceError", 1)
    assert str(failure["run_id"]).startswith("20") and failure["stage"] == "connect", failure
    assert secret not in result.stdout + result.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool: run make setup")
def test_the_documented_prometheus_rules_are_valid_and_name_real_metrics(tmp_path: Path) -> None:
    """docs/operations.md's alerting rules, each YAML block through `promtool check rules`, and every
    claims_etl_ metric they name one a run writes."""
    document = (Path(__file__).parents[3] / "docs" / "operations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(groups:.*?)```", document, flags=re.DOTALL)
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        rules = tmp_path / f"rules-{number}.yml"
        rules.write_text(block, encoding="utf-8")
        checked = subprocess.run(
            [str(PROMTOOL), "check", "rules", str(rules)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    named = set(re.findall(r"\bclaims_etl_[a-z_]+", "".join(blocks)))
    assert named and named <= set(HELP)
