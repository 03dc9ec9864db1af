-- The service dates a release prices: from its effective date to the next release of its year
-- (or the end of the year).
SELECT r.effective_from,
       coalesce(
           (SELECT min(n.effective_from) FROM staging.reference_releases AS n
            WHERE n.year = r.year AND n.effective_from > r.effective_from),
           make_date(r.year + 1, 1, 1)
       ) AS valid_until
FROM staging.reference_releases AS r
WHERE r.release = %(release)s
