"""The RVU cache: reference frames loaded once, kept in-process and in Redis as Arrow IPC under a key
versioned by the loaded reference data (the versions of `staging.reference_releases` and
`staging.qp_lists`, renewed by every load),
so a stale frame is never used. A warm run reads only the version row, not the reference tables.

Redis is optional and never required: without `CLAIMS_ETL_REDIS_URL`, or with Redis down or slow
(short timeouts, redis-py's own retry), the run reads the database, logs one warning, and gets the
same frames.

Redis is not trusted either: each entry is a format tag, a BLAKE2b digest of its key and its bytes,
then the Arrow IPC bytes. An entry whose digest does not match, that does not decode, or whose frame
does not have exactly its declared schema (`reference.FRAME_SCHEMAS`) counts as corrupt: one warning
(no entry bytes in it), `corrupt_entries` in the stats, and the run reads the database as on a miss
and overwrites the entry.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from claims_etl.db import sql
from claims_etl.db.source import source_connection
from claims_etl.reference import FRAME_SCHEMAS, ReferenceFrames
from claims_etl.reference.store import read_frames
from claims_etl.schemas import conform
from claims_etl.settings import Settings

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
KEY_PREFIX = "claims_etl:reference"
TTL_SECONDS = 7 * 24 * 3600  # a version no run asks for ages out
ENTRY_FORMAT = b"CE1:"  # then a 32-byte BLAKE2b digest of key and payload, then the Arrow IPC payload
_DIGEST_BYTES = 32
_IN_PROCESS: dict[str, ReferenceFrames] = {}


@dataclass
class CacheStats:
    version: str = ""
    source: str = ""  # where the frames came from: process, redis or database
    hits: int = 0
    misses: int = 0
    redis_errors: int = 0
    corrupt_entries: int = 0  # Redis entries that failed verification (digest, decoding or schema)
    seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"hit_rate": round(self.hit_rate, 4)}


def reference_version(settings: Settings) -> str:
    with source_connection(settings) as connection:
        row: Any = connection.execute(sql.load("reference/version")).fetchone()
    return str(row[0])


def _client(settings: Settings) -> redis.Redis | None:
    if settings.redis_url is None:
        return None
    # Imported here: only a run with a cache pays for redis-py's import, its asyncio client included
    # (docs/performance.md, cold start).
    import redis  # noqa: PLC0415
    from redis.backoff import ExponentialBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def _key(version: str, name: str) -> str:
    return f"{KEY_PREFIX}:{version}:{name}"


def _digest(key: str, payload: bytes) -> bytes:
    """Over the key too: an entry copied under another frame's or version's key does not verify."""
    digest = hashlib.blake2b(key.encode(), digest_size=_DIGEST_BYTES)
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()


def _encode(key: str, frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    payload = buffer.getvalue()
    return ENTRY_FORMAT + _digest(key, payload) + payload


def _decode(key: str, name: str, blob: bytes) -> pl.DataFrame | str:
    """The frame of a verified entry, or why it is corrupt: its format tag and digest first, then the
    Arrow IPC bytes must decode into exactly the schema declared for `name`."""
    header = len(ENTRY_FORMAT) + _DIGEST_BYTES
    if len(blob) < header or not blob.startswith(ENTRY_FORMAT):
        return "unknown format"
    digest, payload = blob[len(ENTRY_FORMAT) : header], blob[header:]
    if not hmac.compare_digest(digest, _digest(key, payload)):
        return "digest mismatch"
    try:
        frame = pl.read_ipc(io.BytesIO(payload))
    except (Exception, pl.exceptions.PanicException):  # Polars/Arrow panic on some malformed IPC
        return "does not decode"
    if frame.schema != pl.Schema(FRAME_SCHEMAS[name]):
        return "wrong schema"
    return frame


def _redis_get(client: redis.Redis, version: str) -> tuple[ReferenceFrames | None, str | None]:
    """Every frame of the version, verified, or None unless all are there; and, if an entry failed
    verification, which and why (`rvu: digest mismatch`), never its bytes."""
    keys = {name: _key(version, name) for name in FRAME_SCHEMAS}
    stored = client.mget(list(keys.values()))
    if any(blob is None for blob in stored):
        return None, None
    frames: dict[str, pl.DataFrame] = {}
    for (name, key), blob in zip(keys.items(), stored, strict=True):
        decoded = _decode(key, name, blob)  # type: ignore[arg-type]  # mget of bytes keys: bytes
        if isinstance(decoded, str):
            return None, f"{name}: {decoded}"
        frames[name] = decoded
    return ReferenceFrames(**frames), None


def _redis_put(client: redis.Redis, version: str, frames: ReferenceFrames) -> None:
    with client.pipeline(transaction=True) as pipe:
        for name in FRAME_SCHEMAS:
            key = _key(version, name)
            frame = conform(getattr(frames, name), FRAME_SCHEMAS[name], name=name)  # what _decode checks
            pipe.set(key, _encode(key, frame), ex=TTL_SECONDS)
        pipe.execute()


def _redis_error() -> type[Exception]:
    """redis-py's base error class. Asked for only when a cache call failed, so once a client exists
    and redis is imported."""
    import redis  # noqa: PLC0415

    return redis.RedisError


def _redis_failed(stats: CacheStats, error: Exception) -> None:
    stats.redis_errors += 1
    if stats.redis_errors == 1:  # one warning per run, whatever else fails after it
        log.warning("Redis unavailable, reading reference data from the database (%s)", type(error).__name__)


def reference_frames(settings: Settings) -> tuple[ReferenceFrames, CacheStats]:
    """The reference frames of the current version: in-process, else Redis, else the database."""
    started = time.perf_counter()
    stats = CacheStats(version=reference_version(settings))
    frames = _IN_PROCESS.get(stats.version)
    if frames is not None:
        stats.source, stats.hits = "process", 1
    client = _client(settings) if frames is None else None
    if client is not None:
        try:
            frames, corrupt = _redis_get(client, stats.version)
            if frames is not None:
                stats.source, stats.hits = "redis", 1
            elif corrupt is not None:  # read the database as on a miss; the put below overwrites it
                stats.corrupt_entries += 1
                log.warning("Redis reference cache entry corrupt (%s), reading the database", corrupt)
        except _redis_error() as error:
            _redis_failed(stats, error)
            client = None
    if frames is None:
        frames = read_frames(settings)
        stats.source, stats.misses = "database", 1
        if client is not None:
            try:
                _redis_put(client, stats.version, frames)
            except _redis_error() as error:
                _redis_failed(stats, error)
    _IN_PROCESS[stats.version] = frames
    stats.seconds = time.perf_counter() - started
    return frames, stats


def clear_in_process() -> None:
    """Forget the in-process frames (tests, and notebooks that reload reference data by hand)."""
    _IN_PROCESS.clear()
