"""What people see: the run summary (CLI, report), the dashboard, progress bars, and CSV export rows.
Everything renders from a run summary dict (RunResult.as_dict, as stored in staging.etl_run_log)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from claims_etl.ops.metrics import scalar_metrics
from claims_etl.ops.progress_log import failure_reason
from claims_etl.stages import STAGES
from claims_etl.stages.rules import rule_table

EXPORT_COLUMNS = ["run_id", "started_at", "status", "kind", "name", "labels", "value"]


def run_status(run: dict[str, Any]) -> str:
    """A run's status, with its note: `failed (killed)` for a run found killed by a later one."""
    return f"{run['status']} ({run['note']})" if run.get("note") else str(run["status"])


def stage_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"run {summary['run_id']}: {run_status(summary)}")
    for column in ("stage", "seconds", "rows in", "rows out", "rows/s", "peak RSS MiB"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in summary.get("stages", []):
        table.add_row(
            stage["stage"],
            f"{stage['seconds']:.3f}",
            f"{stage['rows_in']:,}",
            f"{stage['rows_out']:,}",
            f"{stage['rows_per_second']:,.0f}",
            f"{stage['peak_rss_bytes'] / 2**20:,.0f}",
        )
    table.add_section()
    table.add_row(
        "total (wall)",
        f"{summary.get('seconds', 0):.3f}",
        f"{summary.get('claims_read', 0):,}",
        "",
        f"{summary.get('claims_per_second', 0):,.0f}",
        "",
    )
    table.caption = (
        f"{summary.get('claims_read', 0):,} claims read, {summary.get('claims_priced', 0):,} priced, "
        f"{summary.get('claims_rejected', 0):,} rejected, {summary.get('claims_recovered', 0):,} recovered; "
        f"{summary.get('claims_per_second', 0):,.0f} claims/s"
    )
    workers = {part["worker"] for part in summary.get("ranges", [])}
    if len(workers) > 1:  # stages ran side by side: their seconds add up to more than the wall time
        table.caption += f"\nstage seconds summed over {len(workers)} workers' {len(summary['ranges'])} ranges"
    return table


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="metrics", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    latency = metrics.get("chunk_latency_seconds", {})
    cache = metrics.get("cache", {})
    rows = [
        ("load chunk latency p50/p95/p99 s", " / ".join(f"{latency.get(q, 0):.3f}" for q in ("p50", "p95", "p99"))),
        ("CPU % max / mean", f"{metrics.get('cpu_percent_max', 0):.0f} / {metrics.get('cpu_percent_mean', 0):.0f}"),
        ("memory % max", f"{metrics.get('memory_percent_max', 0):.0f}"),
        ("RSS max MiB", f"{metrics.get('rss_bytes_max', 0) / 2**20:,.0f}"),
        (
            "reference cache",
            f"{cache.get('source', '-')} (hit rate {cache.get('hit_rate', 0):.0%}, {cache.get('seconds', 0):.3f} s)",
        ),
        ("rejection rate", f"{metrics.get('rejection_rate', 0):.2%}"),
    ]
    for database, counts in metrics.get("connections", {}).items():
        rows.append((f"{database} connections used / configured", f"{counts['used']} / {counts['configured']}"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _rejections_table(metrics: dict[str, Any], key: str = "rejections_by_rule") -> Table:
    """Claims per rule id, with the contract rule's description (a custom rule's is in the run's rules file)."""
    described = {row["id"]: row["description"] for row in rule_table()}
    table = Table(title=key.replace("_", " "))
    table.add_column("rule")
    table.add_column("claims", justify="right")
    table.add_column("description")
    for rule, count in sorted(metrics.get(key, {}).items()):
        table.add_row(rule, f"{count:,}", described.get(rule, "custom rule"))
    return table


def _alerts(alerts: list[dict[str, Any]]) -> RenderableType:
    if not alerts:
        return Text("alerts: none", style="green")
    lines = [Text(f"ALERT {alert['name']}: {alert['message']}", style="bold red") for alert in alerts]
    return Group(*lines)


def run_summary(summary: dict[str, Any]) -> RenderableType:
    """The stage table, then metrics, rejections by rule and alerts (when the run recorded them)."""
    parts: list[RenderableType] = [stage_table(summary)]
    if summary.get("error"):
        parts.append(Text(f"reason: {failure_reason(summary['error'])}"))
    if summary.get("metrics"):
        parts += [_metrics_table(summary["metrics"]), _rejections_table(summary["metrics"])]
        if summary["metrics"].get("warnings_by_rule"):
            parts.append(_rejections_table(summary["metrics"], "warnings_by_rule"))
    if "alerts" in summary:
        parts.append(_alerts(summary["alerts"]))
    return Group(*parts)


def _progress_cell(run: dict[str, Any]) -> str:
    progress = run.get("progress", {})
    cells = []
    for stage in STAGES:
        if stage in progress:
            done, total = progress[stage]["done"], progress[stage]["total"]
            cells.append(f"{stage} {done:,}/{total:,}")
    return cells[-1] if cells else "starting"


def dashboard(runs: list[dict[str, Any]]) -> RenderableType:
    """Runs in progress (their current stage and count) above the recent finished runs."""
    active = [run for run in runs if run["status"] == "running"]
    live = Table(title=f"runs in progress: {len(active)}")
    for column in ("run", "started", "stage", "stages done"):
        live.add_column(column, no_wrap=column == "run", min_width=24 if column == "run" else None)
    for run in active:
        done = [s for s in STAGES if s in run.get("progress", {})]
        live.add_row(run["run_id"], run["started_at"][11:19], _progress_cell(run), ", ".join(done))
    recent = Table(title="recent runs")
    for column in ("run", "status", "claims", "priced", "rejected", "seconds", "claims/s", "alerts"):
        recent.add_column(
            column,
            justify="left" if column in ("run", "status", "alerts") else "right",
            no_wrap=column == "run",
            min_width=24 if column == "run" else None,
        )
    for run in runs:
        if run["status"] == "running":
            continue
        alerts = ", ".join(alert["name"] for alert in run.get("alerts", [])) or "-"
        recent.add_row(
            run["run_id"],
            run_status(run),
            f"{run.get('claims_read', 0):,}",
            f"{run.get('claims_priced', 0):,}",
            f"{run.get('claims_rejected', 0):,}",
            f"{run.get('seconds', 0):.2f}",
            f"{run.get('claims_per_second', 0):,.0f}",
            alerts,
        )
    return Group(live, recent)


def reconciliation(report: dict[str, Any]) -> RenderableType:
    """`reconcile`: claims per source status and rows per warehouse table, then each check with its
    count and the lowest claim ids it found (ids only)."""
    counts = Table(title="source statuses and warehouse rows")
    counts.add_column("where")
    counts.add_column("claims", justify="right")
    for status, claims in report["source_statuses"].items():
        counts.add_row(f"source: {status}", f"{claims:,}")
    counts.add_row("source: pending, in flight (leased to a live run)", f"{report['in_flight']:,}")
    for table, rows in report["warehouse_rows"].items():
        counts.add_row(f"warehouse: {table}", f"{rows:,}")
    verdict = "consistent" if report["consistent"] else "DIFFERENCES"
    checks = Table(title=f"checks: {verdict}")
    for column in ("check", "claims", "claim ids (lowest)"):
        checks.add_column(column, justify="right" if column == "claims" else "left")
    for difference in report["differences"]:
        listed = ", ".join(map(str, difference["claim_ids"]))
        more = ", ..." if difference["count"] > len(difference["claim_ids"]) else ""
        checks.add_row(difference["description"], f"{difference['count']:,}", (listed + more) or "-")
    return Group(counts, checks)


def export_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long format: one row per (run, stage measure | metric | alert)."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        base = {"run_id": run["run_id"], "started_at": run["started_at"], "status": run["status"]}
        for stage in run.get("stages", []):
            for measure in ("seconds", "rows_in", "rows_out", "rows_per_second", "peak_rss_bytes"):
                rows.append(
                    base | {"kind": "stage", "name": measure, "labels": stage["stage"], "value": stage[measure]}
                )
        metrics = run.get("metrics", {})
        for name, value in scalar_metrics(metrics).items():
            rows.append(base | {"kind": "metric", "name": name, "labels": "", "value": value})
        for percentile, value in metrics.get("chunk_latency_seconds", {}).items():  # p50: quantile 0.5
            quantile = str(int(percentile[1:]) / 100)
            rows.append(base | {"kind": "metric", "name": "chunk_seconds", "labels": quantile, "value": value})
        if (hit_ratio := metrics.get("cache", {}).get("hit_rate")) is not None:
            rows.append(base | {"kind": "metric", "name": "cache_hit_ratio", "labels": "", "value": hit_ratio})
        for rule, count in metrics.get("rejections_by_rule", {}).items():
            rows.append(base | {"kind": "metric", "name": "rejections", "labels": rule, "value": count})
        for rule, count in metrics.get("warnings_by_rule", {}).items():
            rows.append(base | {"kind": "metric", "name": "warnings", "labels": rule, "value": count})
        for alert in run.get("alerts", []):
            rows.append(
                base | {"kind": "alert", "name": alert["name"], "labels": alert["message"], "value": alert["value"]}
            )
    return rows


def rules_table(rules: list[dict[str, Any]], path: str | None, sha256: str) -> Table:
    """`rules list`: every rule (contract, custom, then pricing's facility set) as a rules file sets it;
    the title names the file and its sha256, or says there is none (no hash of an empty input)."""
    source = f"{path} (sha256 {sha256})" if path else "the defaults, no rules file"
    table = Table(title=f"rules in force: {source}")
    for column in ("id", "level", "severity", "enabled", "parameters", "description"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        parameters = ", ".join(
            f"{name}={','.join(value) if isinstance(value, list) else value}"
            for name, value in rule["parameters"].items()
        )
        enabled = "yes" if rule["enabled"] else "no"
        table.add_row(rule["id"], rule["level"], rule["severity"], enabled, parameters, rule["description"])
    return table


def releases(found: list[dict[str, Any]]) -> RenderableType:
    """`reference list`: one row per loaded release, newest first, then each release's files with their
    whole sha256 (a hash cut to fit a table cell could not be checked against the file)."""
    table = Table(title=f"reference releases: {len(found)}")
    for column in ("release", "year", "in force from", "RVU rows", "GPCI rows", "QP"):
        table.add_column(column, justify="right" if column.endswith("rows") else "left", overflow="fold")
    parts: list[RenderableType] = [table]
    for r in found:
        table.add_row(
            r["release"],
            str(r["year"]),
            str(r["effective_from"]),
            f"{r['rvu_rows']:,}",
            f"{r['gpci_rows']:,}",
            f"{r['qp_source'] or '-'}; {r['qp_npis']:,} NPIs",
        )
        parts += [Text(f"\n{r['release']}, loaded {r['loaded_at']:%Y-%m-%d %H:%M}:", style="bold"), _files(r)]
    return Group(*parts)


def _files(release: dict[str, Any]) -> Table:
    """A release's RVU and GPCI files, each name over its sha256, folded rather than cut when narrow."""
    files = Table.grid(padding=(0, 1))
    files.add_column(no_wrap=True)
    files.add_column(overflow="fold")
    work = f" (work GPCI {release['work_gpci']})" if release.get("work_gpci") else ""
    files.add_row("RVU", f"{release['rvu_file']}\nsha256 {release['rvu_sha256']}")
    files.add_row("GPCI", f"{release['gpci_file']}{work}\nsha256 {release['gpci_sha256']}")
    return files


def dry_run_summary(summary: dict[str, Any]) -> Table:
    """`run --dry-run`: what a run would do now; nothing was leased or written."""
    table = Table("", title="dry run: nothing leased or written")
    for column in ("claims", "lines", "charge", "allowed"):
        table.add_column(column, justify="right")

    def money(text: str) -> str:
        return f"{Decimal(text):,}"

    table.add_row("read", f"{summary['claims_read']:,}", f"{summary['lines_read']:,}", "", "")
    if summary.get("claims_recovered"):
        table.add_row("  recovered", f"{summary['claims_recovered']:,}", "", "", "")
    table.add_row(
        "priced",
        f"{summary['claims_priced']:,}",
        f"{summary['lines_priced']:,}",
        money(summary["charge"]),
        money(summary["allowed"]),
    )
    table.add_row("rejected", f"{summary['claims_rejected']:,}", "", money(summary["rejected_charge"]), "")
    for rule, claims in summary["rejections_by_rule"].items():
        table.add_row(f"  {rule}", f"{claims:,}", "", "", "")
    for year, claims in summary["claims_unpriceable"].items():
        table.add_row(f"left pending ({year})", f"{claims:,}", "", "", "")
    return table
