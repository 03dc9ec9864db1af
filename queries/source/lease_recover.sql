-- Take over the range leases of runs that died (no session holds their advisory lock, not even one of
-- their Dask workers). Their claims may already be in the warehouse, so each range is marked
-- `recovered`: the load deletes them there before inserting, only the rows of the runs in `taken_from`
-- (the dead owner appended to the owners before it: a claim's rows are of one of them). Interval and
-- batch are kept, so the range holds the same claims; `claims` is recounted (those the dead run marked
-- are done). The dead run's lock is taken for this transaction only: once it commits the dead run holds
-- no leases, so a late task of it finds nothing to do instead of waiting for this run to end. Returns
-- each dead run and its pending claims taken: the run fences them in the warehouse before writing
-- (run_records.fence).
WITH owners AS MATERIALIZED (
    SELECT DISTINCT run_id FROM staging.range_leases WHERE run_id <> %(run_id)s
), dead AS MATERIALIZED (
    SELECT run_id FROM owners WHERE pg_try_advisory_xact_lock(hashtextextended(run_id, 0))
), taken AS (
    UPDATE staging.range_leases AS l
    SET run_id = %(run_id)s,
        recovered = true,
        attempts = 0,
        leased_at = now(),
        taken_from = array_append(l.taken_from, l.run_id),
        claims = (
            SELECT count(*)
            FROM staging.claims AS c
            WHERE c.claim_id BETWEEN l.low AND l.high
              AND c.status = 'pending'
              AND (l.batch_id IS NULL OR c.batch_id = l.batch_id))
    FROM dead
    WHERE l.run_id = dead.run_id
    RETURNING dead.run_id AS dead_run, l.claims
)
SELECT dead_run, sum(claims)::bigint FROM taken GROUP BY dead_run
