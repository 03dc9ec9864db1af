-- One metric sample of a run (Prometheus name, labels as JSON). Parameters: run_id, name, labels, value.
INSERT INTO {etl_run_metrics} (run_id, name, labels, value) VALUES (?, ?, ?, ?)
