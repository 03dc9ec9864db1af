-- A run's live progress or final summary, one row per run in staging.etl_run_log (ops/progress_log),
-- read by report, dashboard and export from any terminal.
INSERT INTO staging.etl_run_log (run_id, started_at, updated_at, status, summary)
VALUES (%(run_id)s, %(started_at)s, now(), %(status)s, %(summary)s)
ON CONFLICT (run_id) DO UPDATE SET updated_at = now(), status = excluded.status, summary = excluded.summary
