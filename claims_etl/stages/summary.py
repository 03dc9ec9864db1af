"""Summaries of stage outputs for people: rejections by rule, allowed against charge by any grouping."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def rejections_by_rule(rejected: pl.DataFrame) -> pl.DataFrame:
    """One row per rule id: how many rejected claims broke it.

    Invariant: a claim counts once for each rule it broke, so the counts add up to at least the number
    of rejected claims; most broken rule first, ties by rule id.

    Parameters
    ----------
    rejected : polars.DataFrame
        Rejected claims with a ``rule_ids`` column of comma-separated rule ids
        (`Validated.rejected`); only that column is read.

    Returns
    -------
    polars.DataFrame
        Columns ``rule_id`` (str) and ``claims`` (u32); empty for no rejections.

    Examples
    --------
    >>> import polars as pl
    >>> from claims_etl import rejections_by_rule
    >>> rejected = pl.DataFrame({"claim_id": [1, 2, 3], "rule_ids": ["V01,V13", "V13", "V05"]})
    >>> rejections_by_rule(rejected).rows()
    [('V13', 2), ('V01', 1), ('V05', 1)]
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

    For people, not for money arithmetic: the dollars are floats. Invariant: every line is in exactly
    one group, so the groups' lines, charges and allowed amounts add up to the lines'; one row per
    group, in group order.

    Parameters
    ----------
    priced_lines : polars.DataFrame
        Priced lines (`Priced.lines`); only the ``by`` columns, ``charge_cents`` and
        ``allowed_cents`` are read.
    by : sequence of str, default ("procedure_code",)
        The columns to group by, e.g. ``["facility"]`` or ``["facility", "procedure_code"]``.

    Returns
    -------
    polars.DataFrame
        The ``by`` columns, then ``lines``, ``charge`` and ``allowed`` (dollars) and
        ``allowed_share`` (allowed / charge).

    Examples
    --------
    >>> import polars as pl
    >>> from claims_etl import allowed_vs_charge
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


def totals_by_place_of_service(priced_claims: pl.DataFrame) -> dict[str, tuple[int, int, int]]:
    """Claims, charge cents and allowed cents per place of service of priced claims, exact integers
    (a few dozen POS codes: the loop is over groups, not claims).

    Parameters
    ----------
    priced_claims : polars.DataFrame
        Priced claims (`Priced.claims`); only ``place_of_service``, ``total_charge_cents`` and
        ``total_allowed_cents`` are read.

    Examples
    --------
    >>> import polars as pl
    >>> claims = pl.DataFrame(
    ...     {"place_of_service": ["11", "22", "11"], "total_charge_cents": [5, 9, 1], "total_allowed_cents": [3, 4, 1]}
    ... )
    >>> totals_by_place_of_service(claims)
    {'11': (2, 6, 4), '22': (1, 9, 4)}
    """
    grouped = (
        priced_claims.group_by("place_of_service")
        .agg(pl.len(), pl.col("total_charge_cents").sum(), pl.col("total_allowed_cents").sum())
        .sort("place_of_service")
    )
    return {str(pos): (int(claims), int(charge), int(allowed)) for pos, claims, charge, allowed in grouped.iter_rows()}
