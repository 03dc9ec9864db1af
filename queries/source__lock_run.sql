-- Held for the whole run on the run's own session: while it is held the run is alive; when the
-- process dies its session ends and the lock is free, which is how other runs tell its leases are stale.
SELECT pg_advisory_lock(hashtextextended(%(run_id)s, 0))
