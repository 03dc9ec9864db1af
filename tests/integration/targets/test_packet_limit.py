"""Large legal batch_ids against MariaDB's packet limit (issue 29 item 1), at the server's own
`max_allowed_packet` (16 MiB by default; never raised here). 300 claims with 60 KB ASCII batch_ids
(priced) and 300 with 17,000-emoji ones (rejected by V16, stored as their first 16,383 characters, 64 KB)
make a chunk of about 38 MB: its inserts are cut into slices that fit, the run exits 0, every claim is
loaded once with its whole batch_id, and `reconcile` finds nothing.

One row alone cannot pass 16 MiB within the contract (a batch_id is at most 65,535 bytes, docs/spec.md
§5 V16, and every other column is short), so the claim whose row is too big for the limit is shown with
a session that reports a smaller limit: it is quarantined with a reason that names the table and no
value. A session that reports a larger limit than the server's shows the server's own refusal (08S01,
error 1153, the session closed): a fresh session, smaller slices, and the same outcome."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import claims_etl
from claims_etl.settings import Settings
from claims_etl.synthetic import seed
from claims_etl.targets import odbc
from claims_etl.targets.packets import Packets
from tests.db import SOURCE_URL, cli_env, read_source, run_cli
from tests.helpers import Reader, reconcile

SEEDED = 20
ASCII_IDS, ASCII_BYTES = 300, 60_000
EMOJI_IDS, EMOJI = 300, 17_000  # characters of 4 bytes: past V16's 65,535 bytes
EMOJI_KEPT = 16_383  # what the rejected row keeps (docs/spec.md §5 V16)
MARIADB_DEFAULT_PACKET = 16 * 1024 * 1024
FEW = 12  # large-id claims where the packet limit is smaller than the server's
# Large-id claims whose priced_claims rows make one packet just over the server's limit: it answers
# with its refusal (error 1153). Far over it, it closes the session while the packet is still being
# sent, which reads as any lost connection (2006) and fails the run.
JUST_OVER = 281
ONE_PACKET = 1_000  # rows turbodbc sends per packet there: all of them
# turbodbc binds every batch as this many rows times each column's widest value: 13 MB, not 655 MB,
# for each slice of 64 KB ids; the default is kept where the server's own limit is tested.
FAST_BATCH = 200

pytestmark = pytest.mark.parametrize("target_name", ["mysql"], indirect=True)


def _copies(count: int, first_id: int, batch_id: str) -> None:
    """`count` copies of the first seeded claim (a valid one), with ids from `first_id` and `batch_id`
    (an SQL expression of the copy number `n`)."""
    template = read_source("SELECT min(claim_id) AS first FROM staging.claims").item()
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO staging.claims SELECT %(first)s + n, " + batch_id + ", patient_id, patient_dob, billing_npi,"
            " rendering_npi, mac, locality, place_of_service, diagnosis_1, diagnosis_2, diagnosis_3, diagnosis_4,"
            " total_charge, received_date, status, run_id, processed_at"
            " FROM staging.claims, generate_series(0, %(count)s - 1) n WHERE claim_id = %(template)s",
            {"first": first_id, "count": count, "template": template},
        )
        connection.execute(
            "INSERT INTO staging.claim_lines SELECT %(first)s + n, line_number, service_date, procedure_code,"
            " modifier_1, modifier_2, modifier_3, modifier_4, units, charge, place_of_service"
            " FROM staging.claim_lines, generate_series(0, %(count)s - 1) n WHERE claim_id = %(template)s",
            {"first": first_id, "count": count, "template": template},
        )


def _plant(settings: Settings, tmp_path: Path, ascii_ids: int = ASCII_IDS, emoji: int = EMOJI_IDS) -> None:
    """SEEDED valid claims, then the large-id copies of the first one after them."""
    seed(settings, SEEDED, seed=7, invalid_rate=0.0, directory=tmp_path)
    last = read_source("SELECT max(claim_id) AS m FROM staging.claims").item()
    _copies(ascii_ids, last + 1, f"lpad(n::text, {ASCII_BYTES}, 'a')")
    if emoji:
        _copies(emoji, last + 1 + ascii_ids, f"lpad(n::text, {EMOJI}, U&'\\+01F600')")


def _assert_loaded(
    read_target: Reader, ascii_ids: int = ASCII_IDS, emoji: int = EMOJI_IDS, quarantined: int = 0
) -> None:
    """Every claim once, its batch_id whole (priced) or cut to 16,383 characters (rejected)."""
    priced = read_target(
        "SELECT count(*) AS claims, count(DISTINCT claim_id) AS ids, sum(CASE WHEN length(batch_id) = "
        f"{ASCII_BYTES} THEN 1 ELSE 0 END) AS large FROM warehouse.priced_claims"
    ).row(0)
    rejected = read_target(
        "SELECT count(*) AS claims, count(DISTINCT claim_id) AS ids, sum(CASE WHEN char_length(batch_id) = "
        f"{EMOJI_KEPT} AND octet_length(batch_id) = {4 * EMOJI_KEPT} THEN 1 ELSE 0 END) AS large "
        "FROM warehouse.rejected_claims"
    ).row(0)
    assert [int(value) for value in priced] == [SEEDED + ascii_ids - quarantined] * 2 + [ascii_ids - quarantined]
    assert [int(value or 0) for value in rejected] == [emoji] * 3
    statuses = dict(read_source("SELECT status, count(*) FROM staging.claims GROUP BY 1").iter_rows())
    want = {"processed": SEEDED + ascii_ids - quarantined, "rejected": emoji, "quarantined": quarantined}
    assert statuses == {status: count for status, count in want.items() if count}
    assert read_source("SELECT count(*) FROM staging.range_leases").item() == 0


def _assert_reconciled(settings: Settings) -> None:
    code, report = reconcile(settings)
    assert (code, report["consistent"]) == (0, True), report["differences"]


def _reported_limit(monkeypatch: pytest.MonkeyPatch, limit: Callable[[int], int]) -> None:
    """This process's warehouse sessions report `limit(the server's)` as their packet limit."""
    real = odbc._packet_limit
    monkeypatch.setattr(odbc, "_packet_limit", lambda target, query: limit(real(target, query)))


def test_large_batch_ids_load_at_the_servers_default_packet_limit(
    settings: Settings, read_target: Reader, tmp_path: Path
) -> None:
    assert read_target("SELECT @@max_allowed_packet AS packet").item() == MARIADB_DEFAULT_PACKET
    _plant(settings, tmp_path)
    env = cli_env(settings)
    first = run_cli(env)
    assert first.returncode == 0, first.stderr
    _assert_loaded(read_target)
    _assert_reconciled(settings)
    again = run_cli(env)
    assert again.returncode == 0, again.stderr
    _assert_loaded(read_target)


def test_a_row_too_big_for_the_packet_limit_is_quarantined_and_the_run_goes_on(
    settings: Settings, read_target: Reader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plant(settings, tmp_path, ascii_ids=FEW, emoji=0)  # rejected rows (64 KB) are as big as the one below
    with psycopg.connect(SOURCE_URL, autocommit=True) as connection:  # one legal batch_id of 65,535 bytes
        too_big = connection.execute(
            "UPDATE staging.claims SET batch_id = repeat('c', 65535) WHERE claim_id = "
            "(SELECT min(claim_id) FROM staging.claims WHERE length(batch_id) = %s) RETURNING claim_id",
            [ASCII_BYTES],
        ).fetchone()[0]  # type: ignore[index]
    _reported_limit(monkeypatch, lambda _: 64 * 1024)  # below that row, above the others
    result = claims_etl.run(settings.model_copy(update={"odbc_parameter_sets": FAST_BATCH}))
    assert (result.status, result.claims_quarantined) == ("succeeded", 1)
    _assert_loaded(read_target, ascii_ids=FEW, emoji=0, quarantined=1)
    reasons = read_source("SELECT claim_id, reason FROM staging.claim_quarantine").rows()
    reason = "refused by the warehouse: a row larger than the packet it accepts"
    reason += " (max_allowed_packet, table priced_claims)"
    assert reasons == [(too_big, reason)]
    _assert_reconciled(settings)


def test_a_packet_the_server_refuses_is_sent_again_in_smaller_slices(
    settings: Settings, read_target: Reader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plant(settings, tmp_path, ascii_ids=JUST_OVER, emoji=0)
    refusals: list[int] = []
    real_refused = Packets.refused

    def refused(packets: Packets, estimate: int) -> None:
        refusals.append(estimate)
        real_refused(packets, estimate)

    monkeypatch.setattr(Packets, "refused", refused)
    _reported_limit(monkeypatch, lambda server: 2 * server)  # the ids' table in one packet, just over
    result = claims_etl.run(settings.model_copy(update={"odbc_parameter_sets": ONE_PACKET}))
    assert (result.status, result.claims_quarantined) == ("succeeded", 0)
    assert refusals and min(refusals) > MARIADB_DEFAULT_PACKET  # the server refused, and only packets too big
    _assert_loaded(read_target, ascii_ids=JUST_OVER, emoji=0)
    _assert_reconciled(settings)
