-- The newest runs first, at most `limit` of them.
SELECT run_id, status, started_at, updated_at, summary
FROM staging.etl_run_log
ORDER BY started_at DESC
LIMIT %(limit)s
