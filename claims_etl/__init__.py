"""claims-etl: columnar ETL for professional medical claims.

The nightly run's stages, usable one by one on your own frames (e.g. in a notebook)::

    import claims_etl as ce

    settings = ce.Settings()  # CLAIMS_ETL_* from the environment, or pass source_url=...
    pending = ce.read_pending(settings, limit=1_000)
    reference = ce.load_reference(settings)
    checked = ce.validate(pending.claims, pending.lines, reference, run_date=date.today())
    priced = ce.price(checked.accepted_claims, checked.accepted_lines, reference)
    ce.rejections_by_rule(checked.rejected)
    payer = ce.load_rules(Path("payer.toml"))  # a payer's rules file (docs/spec.md §5.1)
    ce.validate(pending.claims, pending.lines, reference, run_date=date.today(), rules=payer.config)

Money columns are integer cents (`*_cents`), adjustment factors integers x 10^5 (`*_e5`).

A whole run, or a dry run (counts and dollars, nothing leased or written), from Python (an Airflow
PythonOperator, a Dagster op), with the command line's settings, config file and profile::

    settings = ce.Settings(config=Path("/etc/claims-etl.toml"), profile="prod")
    ce.dry_run(settings).as_dict()  # {"claims_read": ..., "allowed": "1234.56", ...}
    result = ce.run(settings)  # a RunResult: result.status, result.claims_priced, result.alerts
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claims_etl.engine.dry_run import DryRun, dry_run
    from claims_etl.engine.outcomes import RunResult
    from claims_etl.engine.run import run
    from claims_etl.reference import ReferenceFrames
    from claims_etl.reference.store import read_frames as load_reference
    from claims_etl.settings import Settings
    from claims_etl.settings.rules_file import RulesConfig, RuleSet, load_rules, parse_rules
    from claims_etl.stages.extract import Extracted, read_pending
    from claims_etl.stages.price import Priced, price
    from claims_etl.stages.summary import allowed_vs_charge, rejections_by_rule
    from claims_etl.stages.validate import Validated, validate

# Each public name and the module that defines it, imported on first use (PEP 562): `import claims_etl`
# and the command line's light commands (--version, --help, config show) then load no Polars, Arrow or
# drivers, and `claims-etl run` imports only what its path needs (docs/performance.md, cold start).
_EXPORTS = {
    "DryRun": "claims_etl.engine.dry_run",
    "dry_run": "claims_etl.engine.dry_run",
    "RunResult": "claims_etl.engine.outcomes",
    "run": "claims_etl.engine.run",
    "ReferenceFrames": "claims_etl.reference",
    "load_reference": "claims_etl.reference.store:read_frames",
    "Settings": "claims_etl.settings",
    "Extracted": "claims_etl.stages.extract",
    "read_pending": "claims_etl.stages.extract",
    "Priced": "claims_etl.stages.price",
    "price": "claims_etl.stages.price",
    "RulesConfig": "claims_etl.settings.rules_file",
    "RuleSet": "claims_etl.settings.rules_file",
    "load_rules": "claims_etl.settings.rules_file",
    "parse_rules": "claims_etl.settings.rules_file",
    "allowed_vs_charge": "claims_etl.stages.summary",
    "rejections_by_rule": "claims_etl.stages.summary",
    "Validated": "claims_etl.stages.validate",
    "validate": "claims_etl.stages.validate",
}


def _version() -> str:
    """The installed distribution's version: one source, pyproject.toml. Read from the distribution's
    METADATA where it is found first on sys.path, as importlib.metadata would find it: importing
    importlib.metadata (its email parser and zip support) was a quarter of `claims-etl --version`'s
    start (docs/performance.md). importlib.metadata answers anything less plain."""
    for entry in sys.path:
        found = sorted(Path(entry or ".").glob("claims_etl-*.dist-info/METADATA"))
        if len(found) == 1:
            for line in found[0].read_text(encoding="utf-8").splitlines():
                if line.startswith("Version:"):
                    return line.removeprefix("Version:").strip()
                if not line:  # the headers end at the first empty line
                    break
        if found:
            break
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("claims-etl")
    except PackageNotFoundError:  # pragma: no cover  (a source tree on sys.path, not installed)
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name not in _EXPORTS:
        raise AttributeError(f"module 'claims_etl' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # once imported, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "DryRun",
    "Extracted",
    "Priced",
    "ReferenceFrames",
    "RuleSet",
    "RulesConfig",
    "RunResult",
    "Settings",
    "Validated",
    "allowed_vs_charge",
    "dry_run",
    "load_reference",
    "load_rules",
    "parse_rules",
    "price",
    "read_pending",
    "rejections_by_rule",
    "run",
    "validate",
]
