-- The run's ranges (its leased intervals, leases/lease_pending.sql and leases/lease_recover.sql), in
-- claim_id order: the unit of work of both engines (one range after another locally, one task per
-- range on Dask).
SELECT low, high, claims
FROM staging.range_leases
WHERE run_id = %(run_id)s
ORDER BY low
