"""The RVU cache does not trust Redis: an entry truncated, with flipped bytes, with a wrong digest, one
that does not decode or has the wrong schema gives one warning (no entry bytes in it), counts as
corrupt, is read from the database as on a miss and is overwritten; a run over it loads the same rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import redis
from polars.testing import assert_frame_equal
from pydantic import SecretStr

from claims_etl.dev.seed import seed
from claims_etl.engine import pipeline
from claims_etl.reference import FRAME_SCHEMAS, ReferenceFrames
from claims_etl.reference.cache import (
    _DIGEST_BYTES,
    ENTRY_FORMAT,
    KEY_PREFIX,
    _digest,
    _encode,
    clear_in_process,
    reference_frames,
)
from claims_etl.reference.store import read_frames
from claims_etl.settings import Settings
from tests.crash.test_crash import assert_exactly_once_and_exact
from tests.integration.test_operations import REDIS_URL
from tests.integration.test_pipeline import Reader

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


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Settings:
    seed(settings, CLAIMS, seed=61, invalid_rate=0.1, directory=tmp_path)
    clear_in_process()
    return settings.model_copy(update={"redis_url": SecretStr(REDIS_URL)})


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
    first = pipeline.run(seeded.model_copy(update={"limit": 100}))
    assert first.metrics.cache["source"] == "database"
    _corrupt_one_entry(redis_db, first.metrics.cache["version"], CORRUPTIONS["flipped-payload-byte"])
    clear_in_process()
    rest = pipeline.run(seeded)
    assert rest.status == "succeeded" and rest.claims_read == CLAIMS - 100
    assert (rest.metrics.cache["source"], rest.metrics.cache["corrupt_entries"]) == ("database", 1)
    assert_exactly_once_and_exact(seeded, read_target, claims=CLAIMS)
