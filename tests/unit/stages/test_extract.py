"""`extract.leave_unpriceable`: a range's claims that no loaded release prices stay out of the run
(pending), as the lease would have left them (docs/design.md, Range leases)."""

from __future__ import annotations

from datetime import date

import polars as pl

from claims_etl.schemas import CLAIMS, LINES, RELEASES
from claims_etl.stages.extract import Extracted, leave_unpriceable

RELEASES_2026 = pl.DataFrame(
    {"release": ["2026A", "2026B"], "year": [2026, 2026], "effective_from": [date(2026, 1, 1), date(2026, 4, 1)]},
    schema=RELEASES,
)


def _range(dates: dict[int, list[date | None]], recovered: frozenset[int] = frozenset()) -> Extracted:
    claims = pl.DataFrame({"claim_id": list(dates), "recovered": [c in recovered for c in dates]}).with_columns(
        pl.lit(None).alias(name) for name in CLAIMS if name not in ("claim_id", "recovered")
    )
    lines_given = ("claim_id", "line_number", "service_date")
    lines = pl.DataFrame(
        {
            "claim_id": [c for c, days in dates.items() for _ in days],
            "line_number": [n for days in dates.values() for n in range(1, len(days) + 1)],
            "service_date": [d for days in dates.values() for d in days],
        },
        schema_overrides={"service_date": pl.Date},
    ).with_columns(pl.lit(None).alias(name) for name in LINES if name not in lines_given)
    return Extracted(claims=claims.select(list(CLAIMS)).cast(CLAIMS), lines=lines.select(list(LINES)).cast(LINES))


def test_claims_with_a_line_no_release_prices_are_left_out_whole_in_order() -> None:
    extracted = _range(
        {
            1: [date(2026, 2, 1)],
            2: [date(2026, 5, 1), date(2025, 12, 31)],  # 2025: no release loaded
            3: [None, date(2026, 4, 1)],  # an unrepresentable date is V16's, not unpriceable
            4: [date(2027, 1, 1)],  # 2027: none either
            5: [date(2026, 1, 1)],
        }
    )
    kept = leave_unpriceable(extracted, RELEASES_2026)
    assert kept.claims.get_column("claim_id").to_list() == [1, 3, 5]
    assert kept.lines.select("claim_id", "line_number").rows() == [(1, 1), (3, 1), (3, 2), (5, 1)]


def test_a_date_before_its_years_first_release_is_unpriceable_and_recovered_claims_stay() -> None:
    late = pl.DataFrame({"release": ["2026A"], "year": [2026], "effective_from": [date(2026, 3, 1)]}, schema=RELEASES)
    extracted = _range({1: [date(2026, 2, 28)], 2: [date(2026, 3, 1)], 3: [date(2026, 2, 1)]}, recovered=frozenset({3}))
    kept = leave_unpriceable(extracted, late)
    assert kept.claims.get_column("claim_id").to_list() == [2, 3]


def test_a_range_that_every_release_prices_is_returned_as_it_was() -> None:
    extracted = _range({1: [date(2026, 2, 1)], 2: [date(2026, 6, 1)]})
    assert leave_unpriceable(extracted, RELEASES_2026) is extracted
