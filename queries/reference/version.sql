-- The loaded reference data's version: changes whenever any release or QP list is (re)loaded, so the
-- cache (in-process and Redis) never serves frames of another set of releases. With it, the digest a
-- Redis entry of that version must hash to (null: none recorded), in the same statement: a warm run
-- makes one round trip to PostgreSQL.
WITH loaded AS (
    SELECT coalesce(md5(string_agg(part, ',' ORDER BY part)), 'empty') AS version
    FROM (
        SELECT 'release:' || release || ':' || version::text AS part FROM staging.reference_releases
        UNION ALL
        SELECT 'qp:' || year::text || ':' || version::text FROM staging.qp_lists
    ) AS parts
)
SELECT loaded.version, digests.digest
FROM loaded
LEFT JOIN staging.reference_cache_digests AS digests ON digests.version = loaded.version
