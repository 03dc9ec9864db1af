-- The loaded reference data's version: changes whenever any release or QP list is (re)loaded, so the
-- cache (in-process and Redis) never serves frames of another set of releases.
SELECT coalesce(md5(string_agg(part, ',' ORDER BY part)), 'empty')
FROM (
    SELECT 'release:' || release || ':' || version::text AS part FROM staging.reference_releases
    UNION ALL
    SELECT 'qp:' || year::text || ':' || version::text FROM staging.qp_lists
) AS parts
