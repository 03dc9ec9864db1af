-- Held for the whole run on the run's own session, and by every session working one of its ranges
-- (a Dask worker's too): while any of them holds it the run is alive. When they are all gone the lock
-- is free, which is how other runs tell its leases are stale (leases/lease_recover.sql takes it
-- exclusively, so it cannot while the run or any of its workers is still at work).
SELECT pg_advisory_lock_shared(hashtextextended(%(run_id)s, 0))
