-- Runs found dead while the log still shows them running (killed: SIGKILL, OOM, a power cut) become
-- failed, with the note `killed` in their summary. A run that finished in the meantime is left as it
-- is (its status is no longer running).
UPDATE staging.etl_run_log
SET status = 'failed',
    updated_at = now(),
    summary = summary || jsonb_build_object('status', 'failed', 'note', 'killed')
WHERE run_id = ANY(%(run_ids)s)
  AND status = 'running'
RETURNING run_id
