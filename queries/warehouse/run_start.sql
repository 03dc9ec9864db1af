-- A run begins: its row in etl_runs, counts zero until it finishes (run_records.record_start).
-- Parameters by position: run_id, started_at, status, options (JSON text).
INSERT INTO {etl_runs} (run_id, started_at, status, claims_read, claims_priced, claims_rejected, options)
VALUES (?, ?, ?, 0, 0, 0, ?)
