-- One alert a run raised. Parameters by position: run_id, alert, value, threshold, message.
INSERT INTO {etl_run_alerts} (run_id, alert, value, threshold, message) VALUES (?, ?, ?, ?, ?)
