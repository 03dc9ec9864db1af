-- The fencing token of a run's chunk, in the chunk's own transaction just before its commit
-- (stages/write.write_tables): it locks the run's etl_runs row until the commit and counts the chunk in
-- (live counts). Once another run took this run's leases over and fenced it (leases/run_fence.sql)
-- the row says failed, and claims_read (NOT NULL) set to NULL fails the statement, so the chunk rolls
-- back: an error, not a row count, since turbodbc reports bound statements' row counts wrongly on
-- psqlODBC. Parameters by position: claims, priced, rejected, run_id.
UPDATE {etl_runs}
SET claims_read = CASE WHEN status = 'running' THEN claims_read + ? END,
    claims_priced = claims_priced + ?,
    claims_rejected = claims_rejected + ?
WHERE run_id = ?
