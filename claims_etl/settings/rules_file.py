"""The rules file (docs/spec.md §5.1): which rules run, at which severity, with which parameters, and
custom rules, as a TOML file held to pydantic models that forbid unknown keys and coerce no types.

Without a file (or with an empty one) every value is its default, which is the contract's rule set
exactly. A file is read and checked whole when the settings are built, before a run leases anything:
a problem is a `ConfigurationError` (exit 2) naming the key.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from claims_etl.errors import ConfigurationError

# Polars is imported where a custom rule is checked or applied, not here: the settings check the rules
# file when a command starts, and a file without custom rules (the default) needs no Polars then
# (docs/performance.md, cold start).
if TYPE_CHECKING:
    import polars as pl

    from claims_etl.schemas import Schema

CONTRACT_RULE_IDS = tuple(f"V{number:02d}" for number in range(1, 18))
RESERVED_RULE_IDS = frozenset(CONTRACT_RULE_IDS)  # custom ids never take these
MAX_RULES = 33  # 17 contract rules and at most 16 custom ones: a bit each in validate's rule mask
Severity = Literal["reject", "warn"]
PosCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]

# What a custom rule's expression may read (docs/spec.md §5.1): a line rule sees the line and its
# claim's dates, a claim rule the claim and its line aggregates.
# The engine's own flags (`recovered`, V16's `unrepresentable`) are not theirs to read.
_FLAGS = ("recovered", "unrepresentable")


@cache
def custom_columns(level: Literal["claim", "line"]) -> Schema:
    """The columns (and types) a custom rule of `level` reads."""
    import polars as pl  # noqa: PLC0415 (see the module's imports)

    from claims_etl.schemas import CLAIMS, LINES  # noqa: PLC0415

    if level == "line":
        lines = {name: dtype for name, dtype in LINES.items() if name not in _FLAGS}
        return lines | {"patient_dob": pl.Date(), "received_date": pl.Date()}
    claims = {name: dtype for name, dtype in CLAIMS.items() if name not in _FLAGS}
    return claims | {"line_count": pl.UInt32(), "line_charge_cents": pl.Int64()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RuleSettings(_Strict):
    """A contract rule: on or off, and whether breaking it rejects the claim or only warns."""

    enabled: bool = True
    severity: Severity = "reject"


class RequiredRule(_Strict):
    """V05, V14, V15, V16: pricing needs a fee schedule row, a GPCI row and a line, and the warehouse
    values it can hold, so these always reject."""

    enabled: Literal[True] = True
    severity: Literal["reject"] = "reject"


class NpiRule(RuleSettings):
    luhn: bool = True  # off: only the shape (10 digits, first 1 or 2) is checked


class UnitsRule(RuleSettings):
    min: int = Field(default=1, ge=0)
    max: int = Field(default=999, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> UnitsRule:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class TimelyFilingRule(RuleSettings):
    days: int = Field(default=365, ge=1, le=36_500)  # 365: one calendar year (29 Feb + 1 year = 28 Feb)


class PosRule(RuleSettings):
    # None: CMS's POS codes (rules.POS_CODES). Empty is refused: it would reject every claim, not turn V11 off.
    codes: list[PosCode] | None = Field(default=None, min_length=1)


class PricingSettings(_Strict):
    facility_pos: list[PosCode] | None = None  # None: §4.1's facility set (stages/columns.FACILITY_POS)


class CustomRule(_Strict):
    """A payer's own rule: a SQL expression (`polars.sql_expr`) true where a claim or line breaks it."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    level: Literal["claim", "line"]
    description: str = Field(min_length=1, max_length=200)
    expression: str = Field(min_length=1, max_length=2_000)
    severity: Severity = "reject"
    enabled: bool = True

    @model_validator(mode="after")
    def _checked(self) -> CustomRule:
        if self.id in RESERVED_RULE_IDS:
            raise ValueError(f"id {self.id} is reserved for the contract's rules (V01-V17)")
        import polars as pl  # noqa: PLC0415 (see the module's imports)

        dtype = expression_type(self.expression, custom_columns(self.level))
        if dtype != pl.Boolean:
            raise ValueError(f"{self.id}: expression gives {dtype}, not true/false")
        return self

    def broken(self) -> pl.Expr:
        import polars as pl  # noqa: PLC0415 (see the module's imports)

        return pl.sql_expr(self.expression)


def expression_type(expression: str, columns: Schema) -> pl.DataType:
    """The type `expression` gives over an empty frame of `columns`; ValueError naming the problem."""
    import polars as pl  # noqa: PLC0415 (see the module's imports)

    try:
        frame = pl.DataFrame(schema=columns).select(pl.sql_expr(expression).alias("broken"))
    except (pl.exceptions.PolarsError, ValueError, TypeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ValueError(f"bad expression {expression!r}: {reason}") from None
    return frame.schema["broken"]


class RulesConfig(_Strict):
    """The rules file's content: a table per contract rule id, `pricing`, and `[[custom]]` rules."""

    V01: NpiRule = NpiRule()
    V02: NpiRule = NpiRule()
    V03: RuleSettings = RuleSettings()
    V04: RuleSettings = RuleSettings()
    V05: RequiredRule = RequiredRule()
    V06: RuleSettings = RuleSettings()
    V07: UnitsRule = UnitsRule()
    V08: RuleSettings = RuleSettings()
    V09: RuleSettings = RuleSettings()
    V10: TimelyFilingRule = TimelyFilingRule()
    V11: PosRule = PosRule()
    V12: RuleSettings = RuleSettings()
    V13: RuleSettings = RuleSettings()
    V14: RequiredRule = RequiredRule()
    V15: RequiredRule = RequiredRule()
    V16: RequiredRule = RequiredRule()
    V17: RuleSettings = RuleSettings()
    pricing: PricingSettings = PricingSettings()
    custom: list[CustomRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _custom_ids(self) -> RulesConfig:
        ids = [rule.id for rule in self.custom]
        twice = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if twice:
            raise ValueError(f"custom rule ids given twice: {', '.join(twice)}")
        if len(CONTRACT_RULE_IDS) + len(ids) > MAX_RULES:
            raise ValueError(f"at most {MAX_RULES - len(CONTRACT_RULE_IDS)} custom rules")
        return self

    def rule(self, rule_id: str) -> RuleSettings | RequiredRule:
        """A contract rule's settings by id."""
        settings: RuleSettings | RequiredRule = getattr(self, rule_id)
        return settings


@dataclass(frozen=True)
class RuleSet:
    """The rule configuration in force: the parsed file, its text and sha256 (recorded with each run)."""

    config: RulesConfig
    text: str = ""
    sha256: str = hashlib.sha256(b"").hexdigest()  # no file: the same as an empty one
    path: str | None = None

    def record(self) -> dict[str, Any]:
        """For etl_runs.options."""
        return {"rules_file": self.path, "rules_sha256": self.sha256, "rules": self.text}


DEFAULT_RULES = RuleSet(RulesConfig())


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "file"


def parse_rules(text: str, *, path: str | None = None) -> RuleSet:
    r"""A rules file's text checked whole (TOML, docs/spec.md §5.1).

    Parameters
    ----------
    text : str
        The file's content; empty means the contract's rules exactly.
    path : str, optional
        Where it came from, for messages and the run's record.

    Returns
    -------
    RuleSet
        The parsed configuration (`config`, for `validate(..., rules=)`), the text and its sha256.

    Raises
    ------
    ConfigurationError
        Invalid TOML, an unknown rule id or key, a wrong type, a bad custom rule: one line naming the key.

    Examples
    --------
    >>> from claims_etl import parse_rules
    >>> payer = parse_rules('[V10]\ndays = 90\n[V13]\nseverity = "warn"')
    >>> payer.config.V10.days, payer.config.V13.severity, payer.config.V07.max
    (90, 'warn', 999)
    >>> parse_rules("[V10]\ndays = '90'")
    Traceback (most recent call last):
    ...
    claims_etl.errors.ConfigurationError: rules file: V10.days: Input should be a valid integer
    """
    name = f"rules file {path}" if path else "rules file"
    try:
        content = tomllib.loads(text)
        config = RulesConfig.model_validate(content)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{name}: not TOML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"{name}: {problems}") from None
    return RuleSet(config=config, text=text, sha256=hashlib.sha256(text.encode()).hexdigest(), path=path)


def load_rules(path: Path | None) -> RuleSet:
    """The rules file at `path` (`parse_rules`), or the contract's rules when there is none."""
    if path is None:
        return DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigurationError(f"rules file {path}: cannot read: {reason}") from None
    return parse_rules(text, path=str(path))
