-- The release of the same year in force just before a new one takes effect, with its QP factor's
-- source and work GPCI choice (its GPCI rows carry over to a release loaded without a GPCI file, its
-- RVU rows to one loaded without a PPRRVU file).
SELECT release, qp_source, work_gpci
FROM staging.reference_releases
WHERE year = %(year)s AND effective_from < %(effective_from)s AND release <> %(release)s
ORDER BY effective_from DESC
LIMIT 1
