-- Every release with the service year it prices and the date it is in force from (docs/spec.md §7).
SELECT release, year::integer AS year, effective_from
FROM staging.reference_releases
ORDER BY year, effective_from
