-- The loaded reference data's version: changes whenever any year is (re)loaded.
SELECT coalesce(md5(string_agg(year::text || ':' || version::text, ',' ORDER BY year)), 'empty')
FROM staging.reference_versions
