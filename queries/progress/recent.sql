-- The newest runs first, at most `limit` of them; with `until` (a run id), the runs started no later
-- than that one (the report's history of the runs up to the run it shows).
SELECT run_id, status, started_at, updated_at, summary
FROM staging.etl_run_log
WHERE %(until)s::text IS NULL
   OR started_at <= (SELECT started_at FROM staging.etl_run_log WHERE run_id = %(until)s::text)
ORDER BY started_at DESC
LIMIT %(limit)s
