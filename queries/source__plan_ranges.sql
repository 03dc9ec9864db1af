-- The run's leased claims cut into consecutive claim_id ranges of at most claims_per_range claims:
-- the unit of work of both engines (one range after another locally, one task per range on Dask).
SELECT min(claim_id) AS low, max(claim_id) AS high, count(*) AS claims
FROM (
    SELECT claim_id, (row_number() OVER (ORDER BY claim_id) - 1) / %(claims_per_range)s AS range_number
    FROM staging.claim_leases
    WHERE run_id = %(run_id)s
) AS leased
GROUP BY range_number
ORDER BY low
