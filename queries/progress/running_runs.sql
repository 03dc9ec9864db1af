-- The runs the run log shows in progress, other than the one asking (ops/progress_log.mark_killed).
SELECT run_id
FROM staging.etl_run_log
WHERE status = 'running'
  AND run_id <> %(run_id)s
