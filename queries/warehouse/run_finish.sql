-- A run ends: final status and counts. Parameters by position: finished_at, status, claims_read,
-- claims_priced, claims_rejected, run_id.
UPDATE {etl_runs}
SET finished_at = ?, status = ?, claims_read = ?, claims_priced = ?, claims_rejected = ?
WHERE run_id = ?
