-- Another release of the same year already in force from the same date (one release a date a year).
SELECT release
FROM staging.reference_releases
WHERE year = %(year)s AND effective_from = %(effective_from)s AND release <> %(release)s
