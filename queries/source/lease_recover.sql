-- Take over the leases of runs that died (no session holds their advisory lock, not even one of their
-- Dask workers). Those claims may already be in the warehouse, so they are marked `recovered`: the
-- load deletes them there before inserting, only the rows of the runs in `taken_from` (the dead owner
-- appended to the owners before it: a claim's rows are of one of them). The dead run's lock is taken
-- for this transaction only: once it commits the dead run holds no leases, so a late task of it finds
-- nothing to do instead of waiting for this run to end. Returns each dead run and its claims taken: the
-- run fences them in the warehouse before writing (run_records.fence).
WITH owners AS MATERIALIZED (
    SELECT DISTINCT run_id FROM staging.claim_leases WHERE run_id <> %(run_id)s
), dead AS MATERIALIZED (
    SELECT run_id FROM owners WHERE pg_try_advisory_xact_lock(hashtextextended(run_id, 0))
), taken AS (
    UPDATE staging.claim_leases AS l
    SET run_id = %(run_id)s, recovered = true, leased_at = now(), taken_from = array_append(l.taken_from, l.run_id)
    FROM dead
    WHERE l.run_id = dead.run_id
    RETURNING dead.run_id AS dead_run
)
SELECT dead_run, count(*) FROM taken GROUP BY dead_run
