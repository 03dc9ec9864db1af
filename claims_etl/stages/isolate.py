"""Claims of a run's chunk the warehouse cannot take, left out as quarantined while the rest commits
(`write_chunk`): claims already in the warehouse from another run, found by one read of the chunk's
range, and claims whose values the warehouse refuses.

When a run's chunk fails to write on a value (SQLSTATE class 22, a data exception such as a string
too long for its column, or 23, an integrity constraint; or a row too big for the server's packet
limit, MariaDB's `max_allowed_packet`: targets/packets.py; never a lost connection), the claims that
cause it are found by writing halves of the chunk in transactions that are rolled back, down to
single claims. Those are quarantined with a reason naming the SQLSTATE (and the column, when the
driver names one; never a value: no PHI), and the rest of the chunk is written in one transaction as
before, so a chunk is still one commit (docs/design.md). Their source status is set with the chunk's
marking (claims_etl/engine/marking.py).

A few refused claims cost a few trial writes of the chunk over; a chunk whose claims are refused
wholesale (a warehouse column narrower than the contract's) is the run's failure, not the claims'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from claims_etl.errors import TargetError
from claims_etl.settings import Settings
from claims_etl.stages.load import ChunkTables
from claims_etl.stages.write import FaultHook, no_checkpoint, write_tables
from claims_etl.targets import Target, read_target_frame

# More refused claims than this in one chunk is something wrong with the warehouse, not a few claims.
MAX_REFUSED = 100
# The column a driver's message names: MariaDB's `column 'x'` or `column `db`.`t`.`x``, PostgreSQL's
# `column "x"` or its COPY context's `, column x:` (psqlODBC passes no context: no column there).
_COLUMN = re.compile(r"""column (?:'(\w+)'|"(\w+)"|(?:`\w+`\.)*`(\w+)`)|, column (\w+):""")
_TABLE = re.compile(r"a row of ([a-z_]+) ")  # packets.OversizedRowError names the table
PACKET_STATE = "08S01"  # what MariaDB says with its packet refusal (error 1153); here, a refused value

# claim_quarantine.reason of a chunk's claim already in the warehouse from another run.
QUARANTINE_REASON = "claim_id already in the warehouse from another run"


@dataclass(frozen=True)
class ChunkWritten:
    """A chunk committed: rows written, and the claims it left out, for the chunk's marking to set
    quarantined (claims_etl/engine/marking.mark_chunk)."""

    rows: int
    quarantined: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()  # each quarantined claim's (write_isolating); none: QUARANTINE_REASON


def refused_state(error: TargetError) -> str | None:
    """The SQLSTATE of a write the warehouse refused on a value (class 22 or 23, or PACKET_STATE for a
    row too big to send), else None: a lost connection, a deadlock or a timeout is no claim's fault.

    >>> refused_state(TargetError("load", "insert failed: Data too long", sqlstate="22001"))
    '22001'
    >>> refused_state(TargetError("load", "insert failed: lost connection", sqlstate="08S01"))
    >>> refused_state(TargetError("load", "insert failed: packet too large", packet_refused=True)) == PACKET_STATE
    True
    """
    if error.refused_value:
        return error.sqlstate
    return PACKET_STATE if error.packet_refused else None


def refusal_reason(error: TargetError) -> str:
    """claim_quarantine.reason for a refused claim: the SQLSTATE and, where named, the column; for a
    row too big for the packet limit, that, and the table where known. Never a value."""
    if refused_state(error) == PACKET_STATE:
        table = _TABLE.search(error.message)
        where = f", table {table.group(1)}" if table else ""
        return f"refused by the warehouse: a row larger than the packet it accepts (max_allowed_packet{where})"
    column = _COLUMN.search(error.message)
    where = f", column {next(name for name in column.groups() if name)}" if column else ""
    return f"refused by the warehouse: a value it cannot store (SQLSTATE {refused_state(error)}{where})"


def _trial(target: Target, chunk: ChunkTables, claims: pa.Array) -> TargetError | None:
    """Write only `claims` of the chunk and roll back: the error if the warehouse refuses a value."""
    every = chunk.claim_ids()
    only = chunk.without(pc.filter(every, pc.invert(pc.is_in(every, value_set=claims))))
    trial = ChunkTables(tables=only.tables, recovered=only.recovered, claims=len(claims))  # unfenced
    try:
        write_tables(target, trial, commit=False)
    except TargetError as error:
        if refused_state(error) is None:
            raise
        return error
    return None


def write_isolating(target: Target, chunk: ChunkTables, checkpoint: FaultHook, failure: TargetError) -> ChunkWritten:
    """After `failure` writing `chunk`: its refused claims found (halves tried, rolled back) and left
    out as quarantined, the rest written in one transaction (fenced as the chunk is). Raises `failure`
    when it is not a refused value, or when no single claim is refused (the failure was not theirs),
    and a TargetError past MAX_REFUSED claims. A packet the server refused although the estimate said
    it fits is the one exception to the last: its session was replaced and its budget lowered
    (`OdbcTarget._columns`), so with no claim refused the whole chunk is written again in smaller slices."""
    if refused_state(failure) is None:
        raise failure
    refused: dict[int, str] = {}
    every = chunk.claim_ids()
    failing = [(pc.take(every, pc.sort_indices(every)), failure)]
    while failing:
        claims, error = failing.pop()
        if len(claims) == 1:
            refused[claims[0].as_py()] = refusal_reason(error)
            if len(refused) > MAX_REFUSED:
                many = f"the warehouse refuses over {MAX_REFUSED} claims of chunk [{chunk.low}, {chunk.high}]"
                raise TargetError("load", f"{many}: {failure.message}")
            continue
        half = len(claims) // 2
        for piece in (claims.slice(0, half), claims.slice(half)):
            trial_error = _trial(target, chunk, piece)
            if trial_error is not None:
                failing.append((piece, trial_error))
    if not refused and not failure.packet_refused:
        raise failure
    ids = sorted(refused)
    rows = write_tables(target, chunk.without(pa.array(ids, pa.int64())), checkpoint)
    return ChunkWritten(rows, tuple(ids), tuple(refused[claim] for claim in ids))


def write_chunk(
    settings: Settings, target: Target, chunk: ChunkTables, checkpoint: FaultHook = no_checkpoint
) -> ChunkWritten:
    """`write_tables`, and for a run's chunk whose insert failed: its claims already in the warehouse
    from another run (a claim reset to pending by hand, a reused claim_id; the repair deletes only the
    dead runs' rows) are found by one read of the chunk's range, left out, and quarantined; the rest
    is written again. Else, when the warehouse refused a value (a data error, not a lost connection),
    the claims it refuses are found and quarantined, the rest written (`write_isolating`).
    A failure that no such claim explains is the run's."""
    try:
        return ChunkWritten(write_tables(target, chunk, checkpoint))
    except TargetError as failure:
        if chunk.fence is None:
            raise
        taken = _loaded_by_other_runs(settings, chunk)
        if not len(taken):
            return write_isolating(target, chunk, checkpoint, failure)
    return ChunkWritten(write_tables(target, chunk.without(taken), checkpoint), tuple(taken.to_pylist()))


def _loaded_by_other_runs(settings: Settings, chunk: ChunkTables) -> pa.Array:
    """The chunk's claims with a warehouse row that its repair does not delete (another run's)."""
    bounds = [str(chunk.low), str(chunk.high)] * 2
    found = read_target_frame(settings, "warehouse/claims_between", stage="load", parameters=bounds)
    found = found.select(pl.col("claim_id").cast(pl.Int64), pl.col("run_id").cast(pl.String))
    ours = pl.from_arrow(pa.table({"claim_id": chunk.claim_ids()}))
    assert isinstance(ours, pl.DataFrame)
    found = found.join(ours, on="claim_id", how="semi")
    if "run_id" in chunk.recovered.column_names:
        repairs = pl.from_arrow(chunk.recovered)
        assert isinstance(repairs, pl.DataFrame)
        found = found.join(repairs, on=["claim_id", "run_id"], how="anti")
    return found.get_column("claim_id").unique().sort().to_arrow()
