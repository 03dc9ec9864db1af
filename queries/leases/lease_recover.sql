-- Take over the dead runs' range leases chosen by engine/leases.takeovers (:dead_runs and :lows,
-- side by side; their runs' locks taken by leases/lease_dead.sql in this transaction). Their claims
-- may already be in the warehouse, so each range is marked `recovered`: the load deletes them there
-- before inserting, only the rows of the runs in `taken_from` (the dead owner appended to the owners
-- before it: a claim's rows are of one of them). Interval and batch are kept, so the range holds the
-- same claims; `claims` is recounted (those the dead run marked are done). Returns each dead run and
-- its pending claims taken: the run fences them in the warehouse before writing (run_records.fence).
WITH chosen AS (
    SELECT * FROM unnest(%(dead_runs)s::text[], %(lows)s::bigint[]) AS t(run_id, low)
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
    FROM chosen
    WHERE l.run_id = chosen.run_id
      AND l.low = chosen.low
    RETURNING chosen.run_id AS dead_run, l.claims
)
SELECT dead_run, sum(claims)::bigint FROM taken GROUP BY dead_run
