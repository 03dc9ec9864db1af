"""The RVU cache: reference frames loaded once, kept in-process and in Redis as Arrow IPC under a key
versioned by the loaded reference data (`staging.reference_versions`, renewed by every reference load),
so a stale frame is never used. A warm run reads only the version row, not the reference tables.

Redis is optional and never required: without `CLAIMS_ETL_REDIS_URL`, or with Redis down or slow
(short timeouts, redis-py's own retry), the run reads the database, logs one warning, and gets the
same frames.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from claims_etl.db import sql
from claims_etl.db.connections import source_connection
from claims_etl.reference import ReferenceFrames
from claims_etl.reference.store import read_frames
from claims_etl.schemas import GPCI, RVU, conform
from claims_etl.settings import Settings

log = logging.getLogger(__name__)
KEY_PREFIX = "claims_etl:reference"
TTL_SECONDS = 7 * 24 * 3600  # a version no run asks for ages out
_IN_PROCESS: dict[str, ReferenceFrames] = {}


@dataclass
class CacheStats:
    version: str = ""
    source: str = ""  # where the frames came from: process, redis or database
    hits: int = 0
    misses: int = 0
    redis_errors: int = 0
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
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def _to_ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def _redis_get(client: redis.Redis, version: str) -> ReferenceFrames | None:
    rvu, gpci = client.mget(f"{KEY_PREFIX}:{version}:rvu", f"{KEY_PREFIX}:{version}:gpci")
    if rvu is None or gpci is None:
        return None
    return ReferenceFrames(
        rvu=conform(pl.read_ipc(io.BytesIO(rvu)), RVU, name="cached rvu"),  # type: ignore[arg-type]
        gpci=conform(pl.read_ipc(io.BytesIO(gpci)), GPCI, name="cached gpci"),  # type: ignore[arg-type]
    )


def _redis_put(client: redis.Redis, version: str, frames: ReferenceFrames) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.set(f"{KEY_PREFIX}:{version}:rvu", _to_ipc(frames.rvu), ex=TTL_SECONDS)
        pipe.set(f"{KEY_PREFIX}:{version}:gpci", _to_ipc(frames.gpci), ex=TTL_SECONDS)
        pipe.execute()


def _redis_failed(stats: CacheStats, error: redis.RedisError) -> None:
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
            frames = _redis_get(client, stats.version)
            if frames is not None:
                stats.source, stats.hits = "redis", 1
        except redis.RedisError as error:
            _redis_failed(stats, error)
            client = None
    if frames is None:
        frames = read_frames(settings)
        stats.source, stats.misses = "database", 1
        if client is not None:
            try:
                _redis_put(client, stats.version, frames)
            except redis.RedisError as error:
                _redis_failed(stats, error)
    _IN_PROCESS[stats.version] = frames
    stats.seconds = time.perf_counter() - started
    return frames, stats


def clear_in_process() -> None:
    """Forget the in-process frames (tests, and notebooks that reload reference data by hand)."""
    _IN_PROCESS.clear()
