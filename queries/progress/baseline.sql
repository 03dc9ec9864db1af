-- The newest succeeded runs other than `run_id`, at most `runs` of them: what an alert compares a run
-- with (claims_etl/ops/metrics.py, evaluate_alerts): claims read, claims/s, the rejected share, and the
-- reference version the run's frames were (its cache entry's key) and how long ago it finished.
SELECT (summary -> 'metrics' ->> 'claims_read')::bigint,
       (summary -> 'metrics' ->> 'claims_per_second')::float8,
       (summary -> 'metrics' ->> 'rejection_rate')::float8,
       summary -> 'metrics' -> 'cache' ->> 'version',
       extract(epoch FROM now() - updated_at)::float8
FROM staging.etl_run_log
WHERE status = 'succeeded' AND run_id <> %(run_id)s::text
ORDER BY started_at DESC
LIMIT %(runs)s
