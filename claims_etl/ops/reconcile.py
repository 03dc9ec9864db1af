"""`claims-etl reconcile`: the source's claim statuses against the warehouse's rows, claim ids only.

Consistent means (docs/spec.md §2, §8): every `processed` claim is in priced_claims and every
`rejected` one in rejected_claims; no claim is in both tables; and a warehouse row's claim is processed
(priced_claims) or rejected (rejected_claims), or pending and leased to a live run (in flight: its chunk
is committed in the warehouse, not yet marked in the source). A crash leaves claims pending, leased to
a dead run and already in the warehouse; the next run repairs them, and reconcile reports them until
then.

The source is read before the warehouse: a chunk is committed in the warehouse before it is marked in
the source, so a claim the source shows finished is in the warehouse when that is read. While runs
are at work, a claim they lease and finish between the two reads can show as a difference: reconcile
is exact when no run is in progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from claims_etl.db import sql
from claims_etl.db.source import live_runs, require_set_up, source_connection
from claims_etl.db.source_reads import read_frame
from claims_etl.settings import Settings
from claims_etl.targets import read_target_frame

MAX_LISTED = 20  # claim ids listed per difference; the count is always complete
CHECKS = {  # name: what a claim listed under it is
    "processed_not_in_priced_claims": "processed in the source, not in priced_claims",
    "rejected_not_in_rejected_claims": "rejected in the source, not in rejected_claims",
    "in_both_warehouse_tables": "in priced_claims and in rejected_claims",
    "pending_in_warehouse_not_in_flight": "pending in the source and in the warehouse, not leased to a live run",
    "priced_not_processed": "in priced_claims, but rejected (or no such claim) in the source",
    "rejected_not_rejected": "in rejected_claims, but processed (or no such claim) in the source",
}


@dataclass(frozen=True)
class Difference:
    name: str  # one of CHECKS
    count: int
    claim_ids: list[int]  # the lowest MAX_LISTED

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "description": CHECKS[self.name], "count": self.count, "claim_ids": self.claim_ids}


@dataclass(frozen=True)
class Reconciliation:
    """Counts per source status and per warehouse table, claims in flight, and every check's differences."""

    statuses: dict[str, int]
    warehouse: dict[str, int]
    in_flight: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return all(difference.count == 0 for difference in self.differences)

    def as_dict(self) -> dict[str, Any]:
        return {
            "consistent": self.consistent,
            "source_statuses": self.statuses,
            "warehouse_rows": self.warehouse,
            "in_flight": self.in_flight,
            "differences": [difference.as_dict() for difference in self.differences],
        }


def _ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col("claim_id").cast(pl.Int64)).unique()


def compare(
    statuses: pl.DataFrame, priced: pl.DataFrame, rejected: pl.DataFrame, in_flight: pl.DataFrame
) -> list[Difference]:
    """Every check of CHECKS over claim ids: `statuses` (claim_id, status) from the source, the ids of
    priced_claims and rejected_claims, and the ids of claims leased to live runs.

    >>> ids = lambda *values: pl.DataFrame({"claim_id": list(values)})
    >>> statuses = pl.DataFrame({"claim_id": [1, 2, 3, 4], "status": ["processed", "rejected", "pending", "pending"]})
    >>> found = compare(statuses, priced=ids(1, 3, 4), rejected=ids(2, 4), in_flight=ids(3))
    >>> [(d.name, d.claim_ids) for d in found if d.count]
    [('in_both_warehouse_tables', [4]), ('pending_in_warehouse_not_in_flight', [4])]
    """
    statuses = statuses.with_columns(pl.col("claim_id").cast(pl.Int64))
    priced, rejected, in_flight = _ids(priced), _ids(rejected), _ids(in_flight)
    flying = in_flight.with_columns(pl.lit(True).alias("in_flight"))

    def with_status(ids: pl.DataFrame) -> pl.DataFrame:
        joined = ids.join(statuses, on="claim_id", how="left").join(flying, on="claim_id", how="left")
        return joined.with_columns(pl.col("in_flight").fill_null(False))

    def having(status: str) -> pl.DataFrame:
        return statuses.filter(pl.col("status") == status).select("claim_id")

    in_warehouse = with_status(pl.concat([priced, rejected]).unique())
    found = {
        "processed_not_in_priced_claims": having("processed").join(priced, on="claim_id", how="anti"),
        "rejected_not_in_rejected_claims": having("rejected").join(rejected, on="claim_id", how="anti"),
        "in_both_warehouse_tables": priced.join(rejected, on="claim_id", how="semi"),
        "pending_in_warehouse_not_in_flight": in_warehouse.filter(
            (pl.col("status") == "pending") & ~pl.col("in_flight")
        ),
        # A quarantined claim keeps the row an earlier run wrote (docs/spec.md §7): recorded, no difference.
        "priced_not_processed": with_status(priced).filter(
            pl.col("status").is_null() | ~pl.col("status").is_in(["processed", "pending", "quarantined"])
        ),
        "rejected_not_rejected": with_status(rejected).filter(
            pl.col("status").is_null() | ~pl.col("status").is_in(["rejected", "pending", "quarantined"])
        ),
    }
    return [
        Difference(name, frame.height, frame.get_column("claim_id").sort().head(MAX_LISTED).to_list())
        for name, frame in found.items()
    ]


def reconcile(settings: Settings) -> Reconciliation:
    """Read the source's statuses and leases (and which lease holders are alive), then the warehouse's
    claim ids (arrow-odbc, `read_target_frame`), and compare them."""
    with source_connection(settings) as connection:
        require_set_up(connection)  # one line saying "run claims-etl db init", not connectorx's error
        statuses = read_frame(settings, sql.load("reconcile/claim_statuses"), stage="reconcile")
        leases = read_frame(settings, sql.load("reconcile/leases"), stage="reconcile")
        alive = live_runs(connection, leases.get_column("run_id").unique().to_list())
    in_flight = leases.filter(pl.col("run_id").is_in(sorted(alive))).select("claim_id")
    priced = read_target_frame(settings, "reconcile/warehouse_ids", stage="reconcile", table="priced_claims")
    rejected = read_target_frame(settings, "reconcile/warehouse_ids", stage="reconcile", table="rejected_claims")
    counts = statuses.group_by("status").len().sort("status")
    return Reconciliation(
        statuses={str(status): int(n) for status, n in counts.iter_rows()},
        warehouse={"priced_claims": priced.height, "rejected_claims": rejected.height},
        in_flight=in_flight.height,
        differences=compare(statuses, priced, rejected, in_flight),
    )
