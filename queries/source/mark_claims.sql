-- Flip the status of one chunk's claims once their warehouse rows are committed: two statements, one
-- transaction, after the lease check (leases/lease_check.sql). claims_etl.engine.marking.mark_chunk
-- checks each statement's row count and rolls back on any difference.
--
-- Why the ids travel: each statement reads staging.claims by its primary key: claim_id = ANY(ids) is an
-- index lookup per id, or a hashed filter when the array is a constant, and never a comparison of every
-- claim with every id (benchmarks/LOG.md).
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
