-- Claims leased to a run, with the run (claims-etl reconcile, read by connectorx); which runs are
-- alive is source/live_runs.sql.
SELECT claim_id, run_id
FROM staging.claim_leases
