-- Release what leases/range_lock.sql took (a task's session may be pooled by its worker).
SELECT pg_advisory_unlock(hashtextextended(%(run_id)s || ':' || %(low)s::text, 0)),
       pg_advisory_unlock_shared(hashtextextended(%(run_id)s, 0))
