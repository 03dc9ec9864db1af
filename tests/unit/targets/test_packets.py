"""Parameter arrays cut to fit a packet limit (claims_etl/targets/packets.py): the estimate each slice is
held to, the one-call fast path, a row too big alone, and a refusal lowering the budget. Against the
real server: tests/integration/targets/test_packet_limit.py."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from claims_etl.targets.packets import (
    LARGE_SLICE,
    MINIMUM_BUDGET,
    PACKET_LOST,
    VALUE_OVERHEAD,
    OversizedRowError,
    Packets,
    packet_lost,
    packet_refused,
)

LIMIT = 16 * 1024 * 1024


def _rows(widths: list[int]) -> pa.Table:
    """claim_id, a string of each width (None for -1), a timestamp: like a load table."""
    ids = pa.array(np.arange(len(widths)), pa.int64())
    text = pa.array([None if width < 0 else "x" * width for width in widths], pa.string())
    stamps = pa.array(np.zeros(len(widths), dtype="datetime64[us]"), pa.timestamp("us"))
    return pa.table({"claim_id": ids, "batch_id": text, "at": stamps})


def _bound(piece: pa.Table) -> int:
    """What a slice may cost: its rows times the fixed part and its widest string, plus framing."""
    widest = max((len(value) for value in piece.column("batch_id").to_pylist() if value is not None), default=0)
    return piece.num_rows * (8 + 8 + widest + 3 * VALUE_OVERHEAD)


def test_a_table_whose_widest_batch_fits_goes_in_one_call() -> None:
    rows = _rows([20] * 100_000 + [-1] * 5)
    slices = Packets(LIMIT, rows_per_batch=10_000).slices(rows, "priced_claims")
    assert len(slices) == 1 and slices[0][0] is rows


def test_slices_cover_every_row_once_in_order_and_each_fits_the_budget() -> None:
    widths = [60_000] * 600 + [10] * 3_000 + [65_535] + [10] * 3_000 + [-1] * 7
    rows = _rows(widths)
    packets = Packets(LIMIT, rows_per_batch=10_000)
    slices = packets.slices(rows, "priced_claims")
    assert len(slices) > 2
    assert pa.concat_tables([piece for piece, _ in slices]).equals(rows)
    for piece, estimate in slices:
        assert estimate == _bound(piece) <= packets.budget < LIMIT


def test_a_row_too_big_alone_is_refused_naming_its_table_and_sizes_never_its_value() -> None:
    rows = _rows([100, 70_000, 100])
    with pytest.raises(OversizedRowError) as refused:
        Packets(64 * 1024, rows_per_batch=10_000).slices(rows, "rejected_claims")
    message = str(refused.value)
    assert "a row of rejected_claims" in message and "max_allowed_packet (65,536 bytes)" in message
    assert "xxx" not in message


def test_a_refused_packet_halves_the_budget_below_its_estimate() -> None:
    packets = Packets(LIMIT, rows_per_batch=10_000)
    packets.refused(2 * LIMIT)  # a larger estimate than the budget: half the budget
    assert packets.budget == (LIMIT - LIMIT // 16) // 2
    packets.refused(1_000_000)
    assert packets.budget == 500_000
    packets.refused(10)
    assert packets.budget == MINIMUM_BUDGET


@pytest.mark.parametrize(
    ("native", "estimate", "lost"),
    [
        (2006, LARGE_SLICE, True),  # "Server has gone away": the close of a refused packet came first
        (2013, 4 * LARGE_SLICE, True),  # "Lost connection to server during query"
        (2006, LARGE_SLICE - 1, False),  # a small slice cannot have passed any real limit: a lost session
        (1205, 4 * LARGE_SLICE, False),  # a lock wait timeout is no packet's doing
    ],
)
def test_a_session_lost_while_sending_a_large_slice_counts_as_a_refused_packet(
    native: int, estimate: int, lost: bool
) -> None:
    message = f"ODBC error\nstate: 08S01\nnative error code: {native}\nmessage: [ma-3.1.15]..."
    assert packet_lost(message, estimate) is lost


def test_a_lost_session_taken_for_a_refused_packet_says_so_in_words_a_refusal_is_known_by() -> None:
    """The ODBC target re-raises such a loss with this line, so the chunk is written again in smaller
    slices (stages/isolate.py) instead of failing the run as a lost connection."""
    assert packet_refused("native error code: 2006\n" + PACKET_LOST.format(20_000_000))
