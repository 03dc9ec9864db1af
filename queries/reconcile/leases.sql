-- Claims in flight, with the run whose range lease holds them (pending, inside its interval, of its
-- batch: docs/design.md) (claims-etl reconcile, read by connectorx); which runs are alive is
-- source/live_runs.sql.
SELECT c.claim_id, l.run_id
FROM staging.range_leases AS l
JOIN staging.claims AS c ON c.claim_id BETWEEN l.low AND l.high
WHERE c.status = 'pending'
  AND (l.batch_id IS NULL OR c.batch_id = l.batch_id)
