-- Take over the leases of runs that died (their advisory lock is free). Those claims may already be
-- in the warehouse, so they are marked `recovered`: the load deletes them there before inserting.
-- Taking the dead run's lock keeps a concurrent run from recovering the same leases.
WITH owners AS MATERIALIZED (
    SELECT DISTINCT run_id FROM staging.claim_leases WHERE run_id <> %(run_id)s
), dead AS MATERIALIZED (
    SELECT run_id FROM owners WHERE pg_try_advisory_lock(hashtextextended(run_id, 0))
)
UPDATE staging.claim_leases AS l
SET run_id = %(run_id)s, recovered = true, leased_at = now()
FROM dead
WHERE l.run_id = dead.run_id
