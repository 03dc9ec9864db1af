-- The range leases of runs that died (no session holds their advisory lock, not even one of their
-- Dask workers), in claim_id order, each with the pending claims (of its batch) it holds now: what
-- a run may take over (engine/leases.takeovers chooses, its limit applied). The dead runs' locks are
-- taken for this transaction only: while it lasts no dead run comes back to life, and once the lease
-- commits a late task of a dead run finds its taken ranges gone. A dry run, on its read-only session,
-- passes no run id of its own and commits at once.
WITH owners AS MATERIALIZED (
    SELECT DISTINCT run_id FROM staging.range_leases WHERE run_id <> %(run_id)s
), dead AS MATERIALIZED (
    SELECT run_id FROM owners WHERE pg_try_advisory_xact_lock(hashtextextended(run_id, 0))
)
SELECT l.run_id,
       l.low,
       l.high,
       l.batch_id,
       (SELECT count(*)
        FROM staging.claims AS c
        WHERE c.claim_id BETWEEN l.low AND l.high
          AND c.status = 'pending'
          AND (l.batch_id IS NULL OR c.batch_id = l.batch_id)) AS pending
FROM staging.range_leases AS l
JOIN dead USING (run_id)
ORDER BY l.low
