-- Flip the status of one chunk's claims (this run's leases in [low, high]) once their warehouse rows
-- are committed, and release those leases: three statements, one transaction (claims_etl.load.mark_chunk
-- checks each one's row count). Only rejected ids travel: every other leased claim in the range was
-- priced.
--
-- Why three statements: the rejected ids used to be LEFT JOINed to the leases as unnest(array), and
-- with the leases' statistics stale the planner could loop over the array for every claim: 20,000
-- claims x 1,000 ids compared one by one, 3.8 s for one chunk instead of 0.2 s (EXPLAIN ANALYZE, 1.1M
-- claims in staging; that statement with the bounds below added hit it in runs: 3.4-4.2 s to load a
-- first range of 25k claims instead of 1.0-1.4 s). Here the rejected ids are index
-- lookups (= ANY) and the rest is one range join, which no plan makes quadratic. Measured with 1.1M
-- claims in staging, 100k marked in 5 chunks of 20k, 3 alternating rounds: 0.81-1.15 s against
-- 1.07-1.38 s for the single statement. The bounds are repeated on the claims side, as in
-- extract__claims.sql, so that no plan scans all of staging.claims, processed history included.

-- 1. The chunk's rejected claims (their ids travel).
UPDATE staging.claims AS c
SET status = 'rejected', run_id = %(run_id)s, processed_at = %(processed_at)s
FROM staging.claim_leases AS l
WHERE c.claim_id = ANY(%(rejected_ids)s::bigint[])
  AND c.claim_id BETWEEN %(low)s AND %(high)s
  AND l.claim_id = c.claim_id
  AND l.run_id = %(run_id)s
  AND l.claim_id BETWEEN %(low)s AND %(high)s;

-- 2. Every other claim leased in the range was priced (a leased claim is pending until this update,
-- so the ones just rejected are skipped).
UPDATE staging.claims AS c
SET status = 'processed', run_id = %(run_id)s, processed_at = %(processed_at)s
FROM staging.claim_leases AS l
WHERE l.run_id = %(run_id)s
  AND l.claim_id BETWEEN %(low)s AND %(high)s
  AND c.claim_id = l.claim_id
  AND c.claim_id BETWEEN %(low)s AND %(high)s
  AND c.status = 'pending';

-- 3. Release the range's leases.
DELETE FROM staging.claim_leases
WHERE run_id = %(run_id)s
  AND claim_id BETWEEN %(low)s AND %(high)s
