-- Held on the session working a range for as long as it works it: a retried range (its first worker
-- presumed dead) waits here until the first attempt's session is really gone, so two attempts of one
-- range never write at the same time. The run's shared lock keeps the run alive meanwhile.
SELECT pg_advisory_lock_shared(hashtextextended(%(run_id)s, 0)),
       pg_advisory_lock(hashtextextended(%(run_id)s || ':' || %(low)s::text, 0))
