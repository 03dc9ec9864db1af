-- One stage of a run. Parameters by position: run_id, stage, seconds, rows_in, rows_out, peak_rss_bytes.
INSERT INTO {etl_stage_timings} (run_id, stage, seconds, rows_in, rows_out, peak_rss_bytes)
VALUES (?, ?, ?, ?, ?, ?)
