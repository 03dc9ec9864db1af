-- A run found killed (ops/run_records.mark_killed): failed, if its row still says running.
-- Parameters by position: finished_at, run_id.
UPDATE {etl_runs}
SET finished_at = ?, status = 'failed'
WHERE run_id = ?
  AND status = 'running'
