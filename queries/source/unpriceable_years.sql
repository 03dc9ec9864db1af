-- Preflight (docs/spec.md §7): pending claims (of the batch, when one is asked for) with a line that no
-- loaded release prices (its service year has no release in force on its service date), counted per
-- service year. A run stops on them (exit 2) or, with --skip-unpriceable, leases around them. A date
-- outside 0001-01-01..9999-12-31 (infinity, year 300000) is no missing fee schedule: rule V16 rejects it.
-- The releases are turned into the few date intervals they price (a year's from its first release's
-- effective date to its end), and each line is tested against those by date: extracting every line's
-- year (a numeric in PostgreSQL) and joining on it took 2.5x as long (benchmarks/LOG.md).
WITH priced AS (
    SELECT greatest(min(effective_from), make_date(year, 1, 1)) AS low, make_date(year + 1, 1, 1) AS high
    FROM staging.reference_releases
    GROUP BY year
)
SELECT extract(year FROM l.service_date)::integer AS year, count(DISTINCT l.claim_id) AS claims
FROM staging.claims AS c
JOIN staging.claim_lines AS l ON l.claim_id = c.claim_id
WHERE c.status = 'pending'
  AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
  AND NOT EXISTS (SELECT 1 FROM priced AS p WHERE l.service_date >= p.low AND l.service_date < p.high)
  AND l.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
GROUP BY 1
ORDER BY 1
