-- Flip the status of one chunk's claims (this run's leases in [low, high]) once their warehouse rows
-- are committed, and release those leases: three statements, one transaction. claims_etl.stages.load.mark_chunk
-- checks each statement's row count and rolls back on any difference. The third is the lease check:
-- if another run took over any of these leases, fewer than the chunk's claims are released.
--
-- Why the ids travel, and no statement joins the leases: fresh leases have no statistics yet (the
-- planner estimates a chunk's range of them at a few rows), and a join planned on that estimate may
-- rescan one side for every row of the other, many times slower than reading by id (benchmarks/LOG.md).
-- Here each statement reads one table by its primary key or its pending index: claim_id = ANY(ids) is an index lookup per id, or a
-- hashed filter when the array is a constant, and never a comparison of every claim with every id.
-- The bounds are repeated so that no plan scans all of staging.claims, processed history included.

-- 1. The chunk's rejected claims.
UPDATE staging.claims
SET status = 'rejected', run_id = %(run_id)s, processed_at = %(processed_at)s
WHERE claim_id = ANY(%(rejected_ids)s::bigint[])
  AND claim_id BETWEEN %(low)s AND %(high)s
  AND status = 'pending';

-- 2. Its priced claims.
UPDATE staging.claims
SET status = 'processed', run_id = %(run_id)s, processed_at = %(processed_at)s
WHERE claim_id = ANY(%(priced_ids)s::bigint[])
  AND claim_id BETWEEN %(low)s AND %(high)s
  AND status = 'pending';

-- 3. Release the range's leases: as many as the chunk has claims, or the run lost some.
DELETE FROM staging.claim_leases
WHERE run_id = %(run_id)s
  AND claim_id BETWEEN %(low)s AND %(high)s
