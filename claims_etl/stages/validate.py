"""Validate stage (pure): every rule V01-V17 evaluated in one pass over claims and lines.

A claim breaking any rule, on itself or on any of its lines, is rejected with the sorted ids of
every rule it broke; the others go on to pricing with all their lines.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from claims_etl.reference import ReferenceFrames
from claims_etl.schemas import CLAIMS, LINES, REJECTED, WARNINGS, conform
from claims_etl.settings.rules_file import RulesConfig
from claims_etl.stages.columns import by_value, claim_id_sorted_if
from claims_etl.stages.keying import key_lines
from claims_etl.stages.rules import DEFAULT_CONFIG, Rule, claim_rules, facility_pos, line_rules

_MASK = pl.Int64  # a bit per rule id: 17 in the contract and at most 16 custom (settings/rules_file.MAX_RULES)


@dataclass(frozen=True)
class Validated:
    """What `validate` made of the claims: the accepted ones with their lines, the rejected ones with
    the rules they broke.

    Invariant: every claim validated is in exactly one of `accepted_claims` and `rejected`; the
    accepted lines are all the lines of the accepted claims, and no line of a rejected claim.

    Attributes
    ----------
    accepted_claims : polars.DataFrame
        Claims that broke no rule, in the `schemas.CLAIMS` columns: the input of `price`.
    accepted_lines : polars.DataFrame
        Their lines, in the `schemas.LINES` columns.
    rejected : polars.DataFrame
        Claims that broke at least one rule, in the `schemas.REJECTED` columns; ``rule_ids`` holds
        the sorted ids of every rule broken, comma-separated (``"V01,V13"``).
    accepted_keyed_lines : polars.DataFrame
        The accepted lines as `keying.key_lines` joined them to their claims and fee schedule rows,
        so that the run's pricing (`price_keyed`) need not join them again.
    warnings : polars.DataFrame
        The warn-severity rules (a rules file's) the accepted claims broke, in the `schemas.WARNINGS`
        columns, a row per claim and rule, sorted by claim_id; empty without warn rules.

    Examples
    --------
    >>> import polars as pl
    >>> from claims_etl import Validated
    >>> from claims_etl.schemas import CLAIMS, LINES, REJECTED
    >>> rejected = pl.DataFrame([{"claim_id": 7, "batch_id": "b1", "recovered": False, "rule_ids": "V01,V13"}],
    ...                         schema=REJECTED)
    >>> checked = Validated(pl.DataFrame(schema=CLAIMS), pl.DataFrame(schema=LINES), rejected, pl.DataFrame())
    >>> checked.rejected_ids.to_list()
    [7]
    """

    accepted_claims: pl.DataFrame  # schemas.CLAIMS
    accepted_lines: pl.DataFrame  # schemas.LINES
    rejected: pl.DataFrame  # schemas.REJECTED
    # The accepted lines as keying.key_lines joined them, so that price need not join them again.
    accepted_keyed_lines: pl.DataFrame
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNINGS))

    @property
    def rejected_ids(self) -> pl.Series:
        """The claim_id of every rejected claim."""
        return self.rejected.get_column("claim_id")


def rule_bits(rules: list[Rule]) -> dict[str, int]:
    """A bit per rule id, in id order: a row's broken rules are one integer (`rule_mask`), so that a
    claim gathers its lines' with one bitwise or, and its rule ids are spelled once per distinct mask."""
    return {rule_id: 1 << position for position, rule_id in enumerate(sorted({rule.id for rule in rules}))}


def _rule_mask(rules: list[Rule], bits: dict[str, int]) -> pl.Expr:
    """The bits of the rules a row breaks (a rule whose expression gives null is not reported)."""
    return functools.reduce(
        operator.or_,
        (pl.when(rule.broken).then(pl.lit(bits[rule.id], _MASK)).otherwise(pl.lit(0, _MASK)) for rule in rules),
    )


def _line_flags(keyed: pl.DataFrame, rules: list[Rule], bits: dict[str, int]) -> pl.DataFrame:
    """Per claim: the bits of the line rules any of its lines broke, its line count and line charges."""
    return (
        keyed.lazy()
        .select(claim_id_sorted_if(keyed), "charge_cents", _rule_mask(rules, bits).alias("line_rule_mask"))
        .group_by("claim_id")
        .agg(
            pl.len().alias("line_count"),
            pl.col("charge_cents").sum().alias("line_charge_cents"),
            pl.col("line_rule_mask").bitwise_or(),
        )
        .collect()
    )


def rule_ids_text(bits: dict[str, int]) -> Callable[[pl.Expr], pl.Expr]:
    """Comma-separated sorted ids of the rules in a `rule_mask` ("" for none), for `columns.by_value`."""

    def text(mask: pl.Expr) -> pl.Expr:
        named = [pl.when((mask & bit) != 0).then(pl.lit(rule_id)) for rule_id, bit in sorted(bits.items())]
        return pl.concat_str(named, separator=",", ignore_nulls=True)

    return text


def _warnings(accepted: pl.DataFrame, warn_bits: dict[str, int]) -> pl.DataFrame:
    """(claim_id, rule_id) for each warn rule bit set in an accepted claim's `warning_mask`: one
    filter per warn rule, not per row; sorted by claim_id as the load's chunks slice it."""
    if not warn_bits:
        return pl.DataFrame(schema=WARNINGS)
    hits = [
        accepted.lazy()
        .filter((pl.col("warning_mask") & bit) != 0)
        .select("claim_id", pl.lit(rule_id, pl.String).alias("rule_id"))
        for rule_id, bit in sorted(warn_bits.items())
    ]
    return conform(pl.concat(hits).sort("claim_id", "rule_id").collect(), WARNINGS, name="warnings")


def validate(
    claims: pl.DataFrame,
    lines: pl.DataFrame,
    reference: ReferenceFrames,
    *,
    run_date: date,
    rules: RulesConfig | None = None,
) -> Validated:
    """Split claims into accepted (with their lines) and rejected (with the ids of the rules broken).

    Every rule V01-V17 (docs/spec.md §5) is evaluated in one pass over claims and lines; no I/O.
    Invariant: each claim ends in exactly one of accepted and rejected. A claim breaking any rule, on
    itself or on any of its lines, is rejected with the sorted ids of every rule it broke, and none of
    its lines goes on to pricing; a claim without lines is rejected (V15).

    Parameters
    ----------
    claims : polars.DataFrame
        Claims with the `schemas.CLAIMS` columns (cast strictly; a missing column raises
        `schemas.SchemaError`).
    lines : polars.DataFrame
        Their lines with the `schemas.LINES` columns.
    reference : ReferenceFrames
        The fee schedule years to look each line's RVU and GPCI rows up in (V05, V06, V14).
    run_date : datetime.date
        V09's "today": a service date after it is in the future.
    rules : RulesConfig, optional
        A rules file's content (`settings.rules_file.load_rules(path).config`, docs/spec.md §5.1): rules
        disabled, set to warn, their parameters, the facility places of service, custom rules.
        Without it, the contract's rules V01-V17 exactly.

    Returns
    -------
    Validated
        The accepted claims and lines, and the rejected claims with ``rule_ids``.

    Examples
    --------
    Two copies of one claim, the second with a wrong NPI check digit; columns left out are null:

    >>> from datetime import date
    >>> import polars as pl
    >>> import claims_etl as ce
    >>> from claims_etl.schemas import CLAIMS, GPCI, LINES, RVU
    >>> rvu = pl.DataFrame([{"year": 2026, "hcpcs": "99214", "modifier": "", "status_code": "A"}], schema=RVU)
    >>> gpci = pl.DataFrame([{"year": 2026, "mac": "01112", "locality": "05"}], schema=GPCI)
    >>> claim = {"billing_npi": "1234567893", "mac": "01112", "locality": "05", "place_of_service": "11",
    ...          "diagnosis_1": "E11.9", "total_charge_cents": 20_000, "received_date": date(2026, 3, 10)}
    >>> claims = pl.DataFrame([{"claim_id": 1, **claim}, {"claim_id": 2, **claim, "billing_npi": "1234567890"}],
    ...                       schema=CLAIMS)
    >>> line = {"line_number": 1, "service_date": date(2026, 3, 2), "procedure_code": "99214", "units": 1,
    ...         "charge_cents": 20_000}
    >>> lines = pl.DataFrame([{"claim_id": 1, **line}, {"claim_id": 2, **line}], schema=LINES)
    >>> checked = ce.validate(claims, lines, ce.ReferenceFrames(rvu=rvu, gpci=gpci), run_date=date(2026, 11, 1))
    >>> checked.accepted_claims.get_column("claim_id").to_list()
    [1]
    >>> checked.rejected.select("claim_id", "rule_ids").rows()
    [(2, 'V01')]
    """
    claims = conform(claims, CLAIMS, name="claims")
    lines = conform(lines, LINES, name="lines")
    config = DEFAULT_CONFIG if rules is None else rules
    keyed = key_lines(lines, claims, reference, facility_pos=facility_pos(config))
    rules_on_claims, rules_on_lines = claim_rules(config), line_rules(run_date, config)
    every = [*rules_on_claims, *rules_on_lines]
    bits = rule_bits(every)
    warned = {rule.id for rule in every if rule.severity == "warn"}
    warn_bits = {rule_id: bit for rule_id, bit in bits.items() if rule_id in warned}
    reject_bits = {rule_id: bit for rule_id, bit in bits.items() if rule_id not in warned}
    # Warn rules' bits move to `warning_mask`; `rule_mask` keeps those of the rules that reject.
    split = [
        (pl.col("rule_mask") & pl.lit(functools.reduce(operator.or_, group.values(), 0), _MASK)).alias(name)
        for name, group in (("rule_mask", reject_bits), ("warning_mask", warn_bits))
    ]
    per_claim = _line_flags(keyed, rules_on_lines, bits)
    judged = (
        claims.lazy()
        .with_columns(claim_id_sorted_if(claims))  # per_claim comes sorted: the join takes its merge path
        .join(per_claim.lazy(), on="claim_id", how="left", maintain_order="left")
        .with_columns(pl.col("line_count", "line_charge_cents", "line_rule_mask").fill_null(0))
        .with_columns((pl.col("line_rule_mask") | _rule_mask(rules_on_claims, bits)).alias("rule_mask"))
        .pipe(lambda frame: frame.with_columns(split) if warn_bits else frame)
        .with_columns(by_value("rule_mask", rule_ids_text(reject_bits), null=pl.lit("")).alias("rule_ids"))
        .collect()
    )
    is_rejected = pl.col("rule_mask") != 0
    rejected = conform(judged.filter(is_rejected), REJECTED, name="rejected")
    accepted = judged.filter(~is_rejected)
    accepted_claims = conform(accepted, CLAIMS, name="accepted_claims")
    accepted_keyed_lines = keyed.filter(~pl.col("claim_id").is_in(rejected.get_column("claim_id").implode()))
    return Validated(
        accepted_claims=accepted_claims,
        accepted_lines=conform(accepted_keyed_lines, LINES, name="accepted_lines"),
        rejected=rejected,
        accepted_keyed_lines=accepted_keyed_lines,
        warnings=_warnings(accepted, warn_bits),
    )
