-- Preflight (docs/spec.md §7): pending claims (of the batch, when one is asked for) with a line that no
-- loaded release prices (its service year has no release in force on its service date), counted per
-- service year. A run stops on them (exit 2) or, with --skip-unpriceable, leases around them. A date
-- outside 0001-01-01..9999-12-31 (infinity, year 300000) is no missing fee schedule: rule V16 rejects it.
SELECT extract(year FROM l.service_date)::integer AS year, count(DISTINCT l.claim_id) AS claims
FROM staging.claims AS c
JOIN staging.claim_lines AS l ON l.claim_id = c.claim_id
LEFT JOIN (
    SELECT year, min(effective_from) AS first_effective FROM staging.reference_releases GROUP BY year
) AS r ON r.year = extract(year FROM l.service_date)
WHERE c.status = 'pending'
  AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
  AND (r.first_effective IS NULL OR l.service_date < r.first_effective)
  AND l.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
GROUP BY 1
ORDER BY 1
