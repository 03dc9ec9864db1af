"""The RVU cache: reference frames loaded once, kept in-process and in Redis as Arrow IPC under a key
versioned by the loaded reference data (the versions of `staging.reference_releases` and
`staging.qp_lists`, renewed by every load),
so a stale frame is never used. A warm run reads only the version row, not the reference tables.

Redis is optional and never required: without `CLAIMS_ETL_REDIS_URL`, or with Redis down or slow
(short timeouts, redis-py's own retry), the run reads the database, logs one warning, and gets the
same frames.

Redis is not trusted either. Each entry is a format tag, a BLAKE2b digest of its key and its bytes,
then the Arrow IPC bytes; that digest has no key, so it catches damage (truncation, flipped bytes, an
entry under another key), not forgery: anyone who can write to Redis can compute it. What ties the
entries to the source of truth is PostgreSQL: the run that read the frames from the database (a miss)
records the SHA-256 of the version's entry payloads in `staging.reference_cache_digests` before it
writes the entries, and a Redis hit is used only when its payloads hash to the digest PostgreSQL holds
for the version, read in the same statement as the version (a warm run still makes one round trip).
Forging an entry thus needs write access to PostgreSQL, which prices from its own tables anyway.

An entry that fails any check (format or digest, no digest recorded for its version, a mismatch with
the recorded one, bytes that do not decode, a frame without exactly its declared schema
`reference.FRAME_SCHEMAS`) counts as corrupt: one warning (no entry bytes in it), `corrupt_entries` in
the stats, and the run reads the database as on a miss and writes the digest and the entries again.

Two runs missing at once: each writes the digest, then the entries. The payload of a version is the
same bytes in every process (the frames are read in one order, rechunked, written uncompressed), so
both write the same digest and the same entries, and whichever write lands last, the digest matches
the entries. Digest first: a run stopped between the two leaves a digest without entries (a miss), not
entries without a digest (a warning).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg

from claims_etl.db import sql
from claims_etl.db.source import source_connection
from claims_etl.errors import ClaimsEtlError
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
    corrupt_entries: int = 0  # Redis lookups refused: an entry's digest, PostgreSQL's digest, decoding, schema
    seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"hit_rate": round(self.hit_rate, 4)}


def _version_and_digest(settings: Settings) -> tuple[str, bytes | None]:
    """The reference version and the digest its Redis entries must hash to (None: none recorded). One
    statement in autocommit: no BEGIN, so one round trip on the warm path."""
    with source_connection(settings, autocommit=True) as connection:
        row: Any = connection.execute(sql.load("reference/version")).fetchone()
    return str(row[0]), None if row[1] is None else bytes(row[1])


def _record_digest(settings: Settings, version: str, digest: bytes) -> None:
    record = {"version": version, "digest": digest, "expire_after": timedelta(seconds=TTL_SECONDS)}
    with source_connection(settings, autocommit=True) as connection:
        connection.execute(sql.load("reference/record_cache_digest"), record)


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


def _payload(frame: pl.DataFrame) -> bytes:
    """The Arrow IPC bytes of a frame: one chunk, uncompressed, so the same frame read in another
    process gives the same bytes (the digest PostgreSQL holds must match whichever run wrote last)."""
    buffer = io.BytesIO()
    frame.rechunk().write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def payloads(frames: ReferenceFrames) -> dict[str, bytes]:
    """Each frame's entry payload, conformed to its declared schema first (what `_frame` checks)."""
    return {name: _payload(conform(getattr(frames, name), FRAME_SCHEMAS[name], name=name)) for name in FRAME_SCHEMAS}


def entry_digest(payloads: dict[str, bytes]) -> bytes:
    """SHA-256 over every frame's name, length and payload, in `FRAME_SCHEMAS` order: the one digest of a
    version's entries that PostgreSQL holds. Lengths delimit: no two sets of payloads share a digest."""
    digest = hashlib.sha256()
    for name in FRAME_SCHEMAS:
        digest.update(name.encode() + b"\0" + len(payloads[name]).to_bytes(8, "big"))
        digest.update(payloads[name])
    return digest.digest()


def _entry(key: str, payload: bytes) -> bytes:
    return ENTRY_FORMAT + _digest(key, payload) + payload


def _encode(key: str, frame: pl.DataFrame) -> bytes:
    return _entry(key, _payload(frame))


def _unwrap(key: str, blob: bytes) -> bytes | str:
    """The payload of an entry whose format tag and own digest check, or why it is corrupt."""
    header = len(ENTRY_FORMAT) + _DIGEST_BYTES
    if len(blob) < header or not blob.startswith(ENTRY_FORMAT):
        return "unknown format"
    digest, payload = blob[len(ENTRY_FORMAT) : header], blob[header:]
    if not hmac.compare_digest(digest, _digest(key, payload)):
        return "digest mismatch"
    return payload


def _frame(name: str, payload: bytes) -> pl.DataFrame | str:
    """The frame of a payload, or why it is corrupt: it must decode into exactly the schema of `name`."""
    try:
        frame = pl.read_ipc(io.BytesIO(payload))
    except (Exception, pl.exceptions.PanicException):  # Polars/Arrow panic on some malformed IPC
        return "does not decode"
    if frame.schema != pl.Schema(FRAME_SCHEMAS[name]):
        return "wrong schema"
    return frame


def _untrusted(stored: dict[str, bytes], trusted: bytes | None) -> str | None:
    """Why the payloads are not the ones the database-reading run wrote, or None when they are."""
    if trusted is None:
        return "no digest recorded in PostgreSQL for this version"
    if not hmac.compare_digest(entry_digest(stored), trusted):
        return "does not match the digest PostgreSQL holds"
    return None


def _checked(checks: dict[str, bytes | pl.DataFrame | str]) -> str | None:
    """The first failed check of an entry, as `<frame>: <why>`, or None."""
    return next((f"{name}: {why}" for name, why in checks.items() if isinstance(why, str)), None)


def _redis_get(client: redis.Redis, version: str, trusted: bytes | None) -> tuple[ReferenceFrames | None, str | None]:
    """Every frame of the version, verified, or None unless all are there; and, if an entry failed
    verification, which and why (`rvu: digest mismatch`), never its bytes. Each entry's own digest
    first (names the damaged entry), then PostgreSQL's digest over all, and only then are bytes decoded."""
    keys = {name: _key(version, name) for name in FRAME_SCHEMAS}
    blobs: list[Any] = client.mget(list(keys.values()))  # bytes, or None where a key is missing
    if any(blob is None for blob in blobs):
        return None, None
    unwrapped = {name: _unwrap(key, blob) for (name, key), blob in zip(keys.items(), blobs, strict=True)}
    if (corrupt := _checked(dict(unwrapped))) is not None:
        return None, corrupt
    stored = {name: payload for name, payload in unwrapped.items() if isinstance(payload, bytes)}
    if (untrusted := _untrusted(stored, trusted)) is not None:
        return None, f"entries: {untrusted}"
    decoded = {name: _frame(name, payload) for name, payload in stored.items()}
    if (corrupt := _checked(dict(decoded))) is not None:
        return None, corrupt
    return ReferenceFrames(**{name: frame for name, frame in decoded.items() if isinstance(frame, pl.DataFrame)}), None


def _redis_put(client: redis.Redis, version: str, stored: dict[str, bytes]) -> None:
    with client.pipeline(transaction=True) as pipe:
        for name, payload in stored.items():
            key = _key(version, name)
            pipe.set(key, _entry(key, payload), ex=TTL_SECONDS)
        pipe.execute()


def _fill(
    settings: Settings, client: redis.Redis, version: str, trusted: bytes | None, frames: ReferenceFrames
) -> None:
    """After a miss: the digest into PostgreSQL, then the entries into Redis (the order the module
    docstring explains). The digest is written only when it is not already the one held. A digest
    that cannot be written (a read-only role, a lock timeout) leaves the cache unfilled, with one
    warning: the run has its frames, and an entry without its digest would only be refused."""
    stored = payloads(frames)
    digest = entry_digest(stored)
    if trusted is None or not hmac.compare_digest(digest, trusted):
        try:
            _record_digest(settings, version, digest)
        except (psycopg.Error, ClaimsEtlError) as error:
            log.warning("reference cache not filled: its digest could not be recorded (%s)", type(error).__name__)
            return
    _redis_put(client, version, stored)


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
    started, stats = time.perf_counter(), CacheStats()
    stats.version, trusted = _version_and_digest(settings)
    frames = _IN_PROCESS.get(stats.version)
    if frames is not None:
        stats.source, stats.hits = "process", 1
    client = _client(settings) if frames is None else None
    if client is not None:
        try:
            frames, corrupt = _redis_get(client, stats.version, trusted)
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
                _fill(settings, client, stats.version, trusted, frames)
            except _redis_error() as error:
                _redis_failed(stats, error)
    _IN_PROCESS[stats.version] = frames
    stats.seconds = time.perf_counter() - started
    return frames, stats


def clear_in_process() -> None:
    """Forget the in-process frames (tests, and notebooks that reload reference data by hand)."""
    _IN_PROCESS.clear()
