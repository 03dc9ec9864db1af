"""Summaries of stage outputs for people: rejections by rule, allowed against charge by any grouping."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def rejections_by_rule(rejected: pl.DataFrame) -> pl.DataFrame:
    """One row per rule id: how many rejected claims broke it (a claim counts once per rule it broke).

    >>> rejections_by_rule(pl.DataFrame({"claim_id": [1, 2], "rule_ids": ["V01,V13", "V13"]})).rows()
    [('V13', 2), ('V01', 1)]
    """
    return (
        rejected.select(pl.col("rule_ids").str.split(",").alias("rule_id"))
        .explode("rule_id")
        .group_by("rule_id")
        .agg(pl.len().alias("claims"))
        .sort(["claims", "rule_id"], descending=[True, False])
    )


def allowed_vs_charge(priced_lines: pl.DataFrame, by: Sequence[str] = ("procedure_code",)) -> pl.DataFrame:
    """Charged and allowed dollars per group of priced lines, with the allowed share of the charge.

    `priced_lines` is `price(...).lines`; group by any of its columns (e.g. "facility", "procedure_code").

    >>> lines = pl.DataFrame({"facility": [0, 0, 1], "charge_cents": [200, 100, 400], "allowed_cents": [100, 50, 100]})
    >>> allowed_vs_charge(lines, by=["facility"]).rows()
    [(0, 2, 3.0, 1.5, 0.5), (1, 1, 4.0, 1.0, 0.25)]
    """
    return (
        priced_lines.group_by(list(by))
        .agg(
            pl.len().alias("lines"),
            (pl.col("charge_cents").sum() / 100).alias("charge"),
            (pl.col("allowed_cents").sum() / 100).alias("allowed"),
        )
        .with_columns((pl.col("allowed") / pl.col("charge")).alias("allowed_share"))
        .sort(list(by))
    )
