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
"""

from claims_etl.reference import ReferenceFrames
from claims_etl.reference.store import read_frames as load_reference
from claims_etl.settings import Settings
from claims_etl.stages.extract import Extracted, read_pending
from claims_etl.stages.price import Priced, price
from claims_etl.stages.rules_config import RulesConfig, RuleSet, load_rules, parse_rules
from claims_etl.stages.summary import allowed_vs_charge, rejections_by_rule
from claims_etl.stages.validate import Validated, validate

__version__ = "0.1.0"
__all__ = [
    "Extracted",
    "Priced",
    "ReferenceFrames",
    "RuleSet",
    "RulesConfig",
    "Settings",
    "Validated",
    "allowed_vs_charge",
    "load_reference",
    "load_rules",
    "parse_rules",
    "price",
    "read_pending",
    "rejections_by_rule",
    "validate",
]
