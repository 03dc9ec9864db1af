-- The run's leased claims cut into consecutive claim_id ranges: the first of at most
-- first_range_claims claims, the others of at most claims_per_range. The unit of work of both
-- engines (one range after another locally, one task per range on Dask).
SELECT min(claim_id) AS low, max(claim_id) AS high, count(*) AS claims
FROM (
    SELECT claim_id,
           CASE WHEN position < %(first_range_claims)s THEN 0
                ELSE 1 + (position - %(first_range_claims)s) / %(claims_per_range)s
           END AS range_number
    FROM (
        SELECT claim_id, row_number() OVER (ORDER BY claim_id) - 1 AS position
        FROM staging.claim_leases
        WHERE run_id = %(run_id)s
    ) AS numbered
) AS leased
GROUP BY range_number
ORDER BY low
