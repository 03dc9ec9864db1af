-- Held on the session working a range for as long as it works it: a retried range (its first worker
-- presumed dead) waits here until the first attempt's session is really gone, so two attempts of one
-- range never write at the same time. The run's shared lock keeps the run alive meanwhile. The wait is
-- bounded by the session's lock_timeout (CLAIMS_ETL_SOURCE_LOCK_TIMEOUT_SECONDS): past it the attempt
-- fails with a clear error (engine/planning.py) instead of blocking for ever, and the server's own
-- keepalives (set per session) end a vanished worker's session, and so free its lock, well before.
SELECT pg_advisory_lock_shared(hashtextextended(%(run_id)s, 0)),
       pg_advisory_lock(hashtextextended(%(run_id)s || ':' || %(low)s::text, 0))
