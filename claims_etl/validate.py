"""Validate stage (pure): every rule V01-V15 evaluated in one pass over claims and lines.

A claim breaking any rule, on itself or on any of its lines, is rejected with the sorted ids of
every rule it broke; the others go on to pricing with all their lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from claims_etl.lookups import key_lines
from claims_etl.reference import ReferenceFrames
from claims_etl.rules import Rule, claim_rules, line_rules
from claims_etl.schemas import CLAIMS, LINES, REJECTED, conform


@dataclass(frozen=True)
class Validated:
    accepted_claims: pl.DataFrame  # schemas.CLAIMS
    accepted_lines: pl.DataFrame  # schemas.LINES
    rejected: pl.DataFrame  # schemas.REJECTED
    # The accepted lines as lookups.key_lines joined them, so that price need not join them again.
    accepted_keyed_lines: pl.DataFrame

    @property
    def rejected_ids(self) -> pl.Series:
        return self.rejected.get_column("claim_id")


def _claim_id_sorted_if(frame: pl.DataFrame) -> pl.Expr:
    """`claim_id`, marked sorted when it is (extracted ranges are), so group_by takes its sorted path."""
    claim_id = pl.col("claim_id")
    return claim_id.set_sorted() if frame.get_column("claim_id").is_sorted() else claim_id


def _flag_columns(rules: list[Rule]) -> list[pl.Expr]:
    return [rule.broken.alias(f"{rule.level}_{rule.id}") for rule in rules]


def _line_flags(keyed: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Per claim: for each line rule, whether any of its lines broke it; plus line count and charges."""
    return (
        keyed.lazy()
        .select(_claim_id_sorted_if(keyed), "charge_cents", *_flag_columns(rules))
        .group_by("claim_id")
        .agg(
            pl.len().alias("line_count"),
            pl.col("charge_cents").sum().alias("line_charge_cents"),
            *(pl.col(f"line_{rule.id}").any() for rule in rules),
        )
        .collect()
    )


def rule_ids_expression(rules: list[Rule]) -> pl.Expr:
    """Comma-separated sorted ids of the rules a claim broke, from its claim_/line_ flag columns."""
    ids = sorted({rule.id for rule in rules})
    broken_by_id = {
        rule_id: pl.any_horizontal(pl.col(f"{r.level}_{r.id}") for r in rules if r.id == rule_id) for rule_id in ids
    }
    return pl.concat_str(
        [pl.when(broken).then(pl.lit(rule_id)) for rule_id, broken in broken_by_id.items()],
        separator=",",
        ignore_nulls=True,
    )


def validate(claims: pl.DataFrame, lines: pl.DataFrame, reference: ReferenceFrames, *, run_date: date) -> Validated:
    """Split claims into accepted (with their lines) and rejected (with rule ids)."""
    claims = conform(claims, CLAIMS, name="claims")
    lines = conform(lines, LINES, name="lines")
    keyed = key_lines(lines, claims, reference)
    rules_on_lines = line_rules(run_date)
    per_claim = _line_flags(keyed, rules_on_lines)
    all_rules = [*claim_rules(), *rules_on_lines]
    line_flag_names = [f"line_{rule.id}" for rule in rules_on_lines]
    judged = (
        claims.lazy()
        .join(per_claim.lazy(), on="claim_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("line_count").fill_null(0),
            pl.col("line_charge_cents").fill_null(0),
            pl.col(line_flag_names).fill_null(False),
        )
        .with_columns(*_flag_columns(claim_rules()))
        .with_columns(rule_ids_expression(all_rules).alias("rule_ids"))
        .collect()
    )
    is_rejected = pl.col("rule_ids") != ""
    rejected = conform(judged.filter(is_rejected), REJECTED, name="rejected")
    accepted_claims = conform(judged.filter(~is_rejected), CLAIMS, name="accepted_claims")
    accepted_keyed_lines = keyed.filter(~pl.col("claim_id").is_in(rejected.get_column("claim_id").implode()))
    return Validated(
        accepted_claims=accepted_claims,
        accepted_lines=conform(accepted_keyed_lines, LINES, name="accepted_lines"),
        rejected=rejected,
        accepted_keyed_lines=accepted_keyed_lines,
    )
