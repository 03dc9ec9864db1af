"""The RVU cache does not trust Redis: an entry truncated, with flipped bytes, with a wrong digest, one
that does not decode or has the wrong schema, or one forged and re-signed by whoever can write to Redis,
gives one warning (no entry bytes in it), counts as corrupt, is read from the database as on a miss and
is overwritten; a run over it loads the same rows. A warm run still reads only Redis and one statement,
and two processes filling the cache at once leave entries a third accepts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
from polars.testing import assert_frame_equal
from pydantic import SecretStr

import claims_etl
from claims_etl.reference import FRAME_SCHEMAS, ReferenceFrames, cache
from claims_etl.reference.cache import (
    _DIGEST_BYTES,
    ENTRY_FORMAT,
    KEY_PREFIX,
    _digest,
    _encode,
    _frame,
    _key,
    _unwrap,
    clear_in_process,
    reference_frames,
)
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from tests.db import REDIS_URL, SOURCE_URL
from tests.helpers import Reader, assert_exactly_once_and_exact, expected_outputs
from tests.seeding import seeded_fixture

CLAIMS = 300
HEADER = len(ENTRY_FORMAT) + _DIGEST_BYTES


def _flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1 :]


def _garbage_with_valid_digest(key: str, blob: bytes) -> bytes:
    payload = b"not arrow ipc at all " * 10
    return ENTRY_FORMAT + _digest(key, payload) + payload


def _wrong_schema_with_valid_digest(key: str, blob: bytes) -> bytes:
    frame = pl.read_ipc(blob[HEADER:])
    return _encode(key, frame.drop(frame.columns[-1]))  # as an older engine's entry would be


CORRUPTIONS: dict[str, Callable[[str, bytes], bytes]] = {
    "truncated": lambda key, blob: blob[: len(blob) // 2],
    "flipped-payload-byte": lambda key, blob: _flip(blob, HEADER + (len(blob) - HEADER) // 2),
    "wrong-digest": lambda key, blob: _flip(blob, len(ENTRY_FORMAT)),
    "raw-ipc-without-digest": lambda key, blob: blob[HEADER:],  # what the cache stored before digests
    "undecodable-with-valid-digest": _garbage_with_valid_digest,
    "wrong-schema-with-valid-digest": _wrong_schema_with_valid_digest,
}


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    """The test Redis without any reference cache entries, before and after."""
    client = redis.Redis.from_url(REDIS_URL)

    def forget() -> None:
        for key in client.scan_iter(f"{KEY_PREFIX}:*"):
            client.delete(key)

    forget()
    yield client
    forget()


def _cold_cache_on_redis(settings: Settings) -> Settings:
    clear_in_process()
    return settings.model_copy(update={"redis_url": SecretStr(REDIS_URL)})


seeded = seeded_fixture(CLAIMS, seed=61, invalid_rate=0.1, then=_cold_cache_on_redis)


def _assert_same_frames(got: ReferenceFrames, want: ReferenceFrames) -> None:
    for name in FRAME_SCHEMAS:  # the frames themselves, not what the stages derived of them
        assert_frame_equal(getattr(got, name), getattr(want, name))


def _corrupt_one_entry(client: redis.Redis, version: str, how: Callable[[str, bytes], bytes]) -> str:
    keys = sorted(key.decode() for key in client.keys(f"{KEY_PREFIX}:{version}:*"))
    assert keys, "the cold lookup filled Redis"
    key = keys[0]
    blob = client.get(key)
    assert isinstance(blob, bytes)
    client.set(key, how(key, blob))
    return key


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_redis_entry_is_read_from_the_database_and_overwritten(
    seeded: Settings, redis_db: redis.Redis, corruption: str, caplog: pytest.LogCaptureFixture
) -> None:
    want = read_frames(seeded)
    _, cold = reference_frames(seeded)
    assert cold.source == "database"
    key = _corrupt_one_entry(redis_db, cold.version, CORRUPTIONS[corruption])
    corrupted = redis_db.get(key)
    clear_in_process()  # a new process: only Redis could serve the frames
    caplog.set_level(logging.WARNING, logger="claims_etl")

    frames, stats = reference_frames(seeded)

    _assert_same_frames(frames, want)
    assert (stats.source, stats.corrupt_entries, stats.hits, stats.misses) == ("database", 1, 0, 1)
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "corrupt" in warnings[0], warnings
    assert len(warnings[0]) < 200 and "\n" not in warnings[0]  # names the entry and why, no bytes
    assert redis_db.get(key) != corrupted  # overwritten with a good entry
    clear_in_process()
    frames, warm = reference_frames(seeded)
    assert (warm.source, warm.corrupt_entries) == ("redis", 0)
    _assert_same_frames(frames, want)


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_run_over_a_corrupt_entry_loads_the_same_rows(
    seeded: Settings, redis_db: redis.Redis, read_target: Reader
) -> None:
    first = claims_etl.run(seeded.model_copy(update={"limit": 100}))
    assert first.metrics.cache["source"] == "database"
    _corrupt_one_entry(redis_db, first.metrics.cache["version"], CORRUPTIONS["flipped-payload-byte"])
    clear_in_process()
    rest = claims_etl.run(seeded)
    assert rest.status == "succeeded" and rest.claims_read == CLAIMS - 100
    assert (rest.metrics.cache["source"], rest.metrics.cache["corrupt_entries"]) == ("database", 1)
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)


RVU_COLUMNS = ["work_rvu_e4", "nonfac_pe_rvu_e4", "facility_pe_rvu_e4", "mp_rvu_e4"]


def _forge_doubled_rvus(client: redis.Redis, version: str) -> bytes:
    """What an attacker with write access to Redis can do with the code alone: double every RVU and sign
    the entry again with the entry format's own (unkeyed) digest. The forgery passes every check an
    entry carries in itself."""
    key = _key(version, "rvu")
    blob = client.get(key)
    assert isinstance(blob, bytes), "the cold run filled Redis"
    frame = pl.read_ipc(blob[HEADER:])
    forged = _encode(key, frame.with_columns(pl.col(name) * 2 for name in RVU_COLUMNS))
    payload = _unwrap(key, forged)
    assert isinstance(payload, bytes) and isinstance(_frame("rvu", payload), pl.DataFrame)  # well formed, signed
    client.set(key, forged)
    return forged


def _cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == cache.__name__ and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("target_name", ["mysql"], indirect=True)
def test_a_forged_re_signed_entry_is_refused_and_the_run_prices_from_the_database(
    seeded: Settings, redis_db: redis.Redis, read_target: Reader, caplog: pytest.LogCaptureFixture
) -> None:
    first = claims_etl.run(seeded.model_copy(update={"limit": 100}))
    assert first.metrics.cache["source"] == "database"
    forged = _forge_doubled_rvus(redis_db, first.metrics.cache["version"])
    clear_in_process()  # a new process: only Redis could serve the frames
    caplog.set_level(logging.WARNING, logger="claims_etl")

    rest = claims_etl.run(seeded)

    assert rest.status == "succeeded" and rest.claims_read == CLAIMS - 100
    assert (rest.metrics.cache["source"], rest.metrics.cache["corrupt_entries"]) == ("database", 1)
    warnings = _cache_warnings(caplog)
    assert len(warnings) == 1 and "corrupt" in warnings[0], warnings
    assert len(warnings[0]) < 200 and "\n" not in warnings[0]
    assert redis_db.get(_key(first.metrics.cache["version"], "rvu")) != forged  # overwritten
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)
    total = read_target("SELECT sum(allowed_amount) AS total FROM warehouse.priced_claim_lines").item()
    clean_cents = expected_outputs(seeded)[0].get_column("allowed_cents").sum()
    assert Decimal(str(total)) == Decimal(clean_cents) / 100  # a clean run's total, not the forged one


@contextmanager
def _traced(path: Path, real: Callable[..., AbstractContextManager[Any]]) -> Iterator[Callable[..., Any]]:
    """`source_connection` with libpq's protocol trace on: every message the cache sends PostgreSQL."""

    @contextmanager
    def traced(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as connection, path.open("a") as trace:
            connection.pgconn.trace(trace.fileno())
            try:
                yield connection
            finally:
                connection.pgconn.untrace()

    yield traced


def _round_trips(path: Path) -> list[str]:
    """The frontend messages that wait for the server: a simple Query, or an extended-protocol Sync."""
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    return [line[3] for line in lines if len(line) > 3 and line[1] == "F" and line[3] in ("Query", "Sync")]


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_a_warm_lookup_hits_redis_with_one_round_trip_to_postgresql(
    seeded: Settings, redis_db: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = read_frames(seeded)
    _, cold = reference_frames(seeded)
    assert cold.source == "database"
    clear_in_process()
    trace = tmp_path / "libpq.trace"
    with _traced(trace, cache.source_connection) as traced:
        monkeypatch.setattr(cache, "source_connection", traced)
        monkeypatch.setattr(cache, "read_frames", lambda _settings: pytest.fail("a warm lookup read the tables"))
        frames, warm = reference_frames(seeded)
    assert (warm.source, warm.hits, warm.misses, warm.corrupt_entries) == ("redis", 1, 0, 0)
    _assert_same_frames(frames, want)
    assert len(_round_trips(trace)) == 1, trace.read_text()  # version and digest in one statement


_WARM = """
import json, sys, time
from claims_etl.reference import cache
from claims_etl.settings import Settings
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # both processes miss at the same moment
frames, stats = cache.reference_frames(Settings())
print(json.dumps({"source": stats.source, "digest": cache.entry_digest(cache.payloads(frames)).hex()}))
"""


@pytest.mark.parametrize("target_name", ["postgresql"], indirect=True)
def test_two_processes_filling_the_cache_at_once_leave_entries_a_third_accepts(
    seeded: Settings, redis_db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    env = os.environ | {"CLAIMS_ETL_SOURCE_URL": SOURCE_URL, "CLAIMS_ETL_REDIS_URL": REDIS_URL}
    start = str(time.time() + 3.0)  # after both have imported the package
    processes = [
        subprocess.Popen([sys.executable, "-c", _WARM, start], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    results = [json.loads(output) for output in outputs]
    assert [result["source"] for result in results] == ["database", "database"]
    # The same frames give the same bytes in every process: whichever write lands last, the digest
    # PostgreSQL holds is the one of the entries Redis holds.
    assert results[0]["digest"] == results[1]["digest"]
    clear_in_process()
    caplog.set_level(logging.WARNING, logger="claims_etl")
    frames, third = reference_frames(seeded)
    assert (third.source, third.corrupt_entries) == ("redis", 0)
    assert _cache_warnings(caplog) == []
    _assert_same_frames(frames, read_frames(seeded))
