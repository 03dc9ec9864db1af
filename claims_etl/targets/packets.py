"""Parameter arrays cut to fit a warehouse's packet limit (MariaDB and MySQL: `max_allowed_packet`).

The MariaDB driver sends each batch of a parameter array (turbodbc's `parameter_sets_to_buffer` rows)
as one bulk-execute packet, and the server refuses a packet over its `max_allowed_packet` and closes
the session (SQLSTATE 08S01, native error 1153). Legal values can be large (a batch_id takes up to
65,535 bytes, docs/spec.md §5 V16), so a batch of such rows can pass the limit. A table is sent in
slices whose estimated packet fits the limit; a row that alone cannot fit is refused before anything
is sent (`OversizedRowError`), as the claim's data problem (stages/isolate.py).

The estimate bounds what turbodbc binds for a batch: every row as wide as each column's widest value
in it, plus a few bytes per value for the protocol's null indicator and length prefix. That is at
least the packet's size, and keeps turbodbc's own buffer (rows times each column's widest value)
within the limit too. SQL Server and PostgreSQL have no such limit: their targets carry no `Packets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Per value, beyond its bytes: the null indicator, a length prefix (up to 9 bytes), a timestamp's
# wider wire form. Measured with MariaDB's driver: about 6 bytes per value over the payload.
VALUE_OVERHEAD = 16
# The share of the limit kept back for the packet's header and the statement's parameter types.
HEADROOM_SHARE = 16
# What a server refusal of an estimated-to-fit packet lowers the budget to, at the least.
MINIMUM_BUDGET = 1024
# A session lost while sending a slice at least this big is taken for a refused packet (`packet_lost`),
# and its error says so in words `packet_refused` knows: the session's error mapping turns them into
# TargetError.packet_refused (targets/odbc.py), which the isolation of refused claims reads.
LARGE_SLICE = 1 << 20
PACKET_LOST = "the session was lost sending a packet of about {:,} bytes: taken for one over max_allowed_packet"


class OversizedRowError(Exception):
    """A row bigger than the packet limit on its own: no batch can carry it."""

    def __init__(self, table: str, row_bytes: int, limit: int) -> None:
        super().__init__(
            f"a row of {table} ({row_bytes:,} bytes with the protocol's framing) is larger than the "
            f"warehouse's max_allowed_packet ({limit:,} bytes)"
        )


@dataclass
class Packets:
    """A session's packet limit, read from the server once when the session opens, and the bytes one
    batch may take. The budget only goes down: when the server refuses a batch the estimate said fits
    (`refused`), later batches are cut smaller."""

    limit: int
    rows_per_batch: int  # turbodbc's parameter_sets_to_buffer: the rows it sends per packet at most
    budget: int = 0

    def __post_init__(self) -> None:
        if not self.budget:
            self.budget = self.limit - self.limit // HEADROOM_SHARE

    def refused(self, estimate: int) -> None:
        """The server refused a batch estimated at `estimate` bytes: at most half of that from now on."""
        self.budget = max(MINIMUM_BUDGET, min(self.budget, estimate) // 2)

    def slices(self, rows: pa.Table, table: str) -> list[tuple[pa.Table, int]]:
        """`rows` as slices that each fit the budget, with each one's estimated packet bytes. The whole
        table in one slice when its widest batch fits (the usual case: one cheap check per column).
        Raises OversizedRowError when one row alone does not fit."""
        fixed = _fixed_width(rows.schema)
        whole = min(rows.num_rows, self.rows_per_batch) * (fixed + _widest(rows))
        if whole <= self.budget:
            return [(rows, whole)]
        widths = _string_widths(rows)
        row_bytes = fixed + widths.sum(axis=1)
        if int(row_bytes.max()) > self.budget:
            raise OversizedRowError(table, int(row_bytes.max()), self.limit)
        return [(rows.slice(start, length), cost) for start, length, cost in self._cuts(widths, fixed)]

    def _cuts(self, widths: np.ndarray, fixed: int) -> list[tuple[int, int, int]]:
        """(start, length, estimated bytes) of consecutive slices, each as long as fits: a slice of n rows
        costs n times (the fixed width plus each string column's widest value in it). One pass of
        numpy per slice, over at most one batch of rows; no loop over rows."""
        cuts, start, total = [], 0, len(widths)
        while start < total:
            window = widths[start : start + self.rows_per_batch]
            widest = np.maximum.accumulate(window, axis=0).sum(axis=1) + fixed
            costs = widest * np.arange(1, len(window) + 1)
            length = max(1, int(np.searchsorted(costs, self.budget, side="right")))
            cuts.append((start, length, int(costs[length - 1])))
            start += length
        return cuts


def _fixed_width(schema: pa.Schema) -> int:
    """Bytes per row of the fixed-width columns, and every column's per-value overhead."""
    fixed = sum(field.type.bit_width // 8 for field in schema if pa.types.is_primitive(field.type))
    return int(fixed) + VALUE_OVERHEAD * len(schema)


def _strings(rows: pa.Table) -> list[pa.ChunkedArray]:
    return [rows.column(index) for index, field in enumerate(rows.schema) if not pa.types.is_primitive(field.type)]


def _widest(rows: pa.Table) -> int:
    """The sum of each string column's longest value, in bytes."""
    return sum(pc.max(pc.binary_length(column)).as_py() or 0 for column in _strings(rows))


def _string_widths(rows: pa.Table) -> np.ndarray:
    """(rows, string columns) int64 matrix of each string value's bytes (0 for null)."""
    columns = [pc.fill_null(pc.binary_length(column), 0).to_numpy() for column in _strings(rows)]
    if not columns:
        return np.zeros((rows.num_rows, 0), dtype=np.int64)
    return np.column_stack(columns).astype(np.int64, copy=False)


def packet_refused(message: str) -> bool:
    """Whether a driver's error is the server refusing a packet over its size limit (MariaDB/MySQL
    error 1153, ER_NET_PACKET_TOO_LARGE, or our own refusal of an oversized row: `OversizedRowError`)."""
    return "max_allowed_packet" in message or "native error code: 1153" in message


def packet_lost(message: str, estimate: int) -> bool:
    """Whether a driver's error is a session lost while sending a large slice: MariaDB answers a packet
    over its limit with error 1153 and closes the session, and when the close reaches the driver first
    it reports 2006 ("Server has gone away") or 2013 ("Lost connection") instead (seen under load). Such
    a loss is taken for a refusal: the budget halves and the write goes again on a fresh session; a
    server really gone fails that session's connect, and the run with it."""
    lost = "native error code: 2006" in message or "native error code: 2013" in message
    return lost and estimate >= LARGE_SLICE
