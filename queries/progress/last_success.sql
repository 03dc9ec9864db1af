-- When the newest successful run finished (Unix seconds; NULL when none has), for the Prometheus
-- textfile's last-success gauge: a failed run reports the previous success's time (ops/progress_log).
SELECT extract(epoch FROM max(updated_at))::float8
FROM staging.etl_run_log
WHERE status = 'succeeded'
