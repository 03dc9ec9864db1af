-- The release of the same year in force just before a new one takes effect (its GPCI rows carry
-- over to a release loaded without a GPCI file).
SELECT release
FROM staging.reference_releases
WHERE year = %(year)s AND effective_from < %(effective_from)s AND release <> %(release)s
ORDER BY effective_from DESC
LIMIT 1
