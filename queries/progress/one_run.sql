-- One run's progress row, by its run_id.
SELECT run_id, status, started_at, updated_at, summary
FROM staging.etl_run_log
WHERE run_id = %(run_id)s
