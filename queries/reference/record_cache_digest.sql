-- The digest of a reference version's Redis cache entries (reference/cache.py), written before the
-- entries. An upsert: the entries of one version are the same bytes whichever run writes them, so two
-- runs filling the cache at once write the same digest; a different one replaces a stale digest (an
-- engine whose Arrow encoding changed). Digests of other versions older than the entries' TTL go.
WITH expired AS (
    DELETE FROM staging.reference_cache_digests
    WHERE version <> %(version)s AND written_at < now() - %(expire_after)s
)
INSERT INTO staging.reference_cache_digests (version, digest)
VALUES (%(version)s, %(digest)s)
ON CONFLICT (version) DO UPDATE SET digest = excluded.digest, written_at = now()
