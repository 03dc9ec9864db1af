-- Quarantined claims (their claim_id is in the warehouse from another run, the warehouse refused their
-- values, or the source cannot deliver them: docs/spec.md §7), in the chunk's marking transaction
-- (engine/marking.mark_chunk) only when it has any, or before the range loads (engine/marking.
-- quarantine_unreadable): status `quarantined`, never leased again, and each one's reason recorded.
-- They run after the range lease check (leases/lease_check.sql), in the same transaction.

-- 1. Their status.
UPDATE staging.claims
SET status = 'quarantined', run_id = %(run_id)s, processed_at = %(processed_at)s
WHERE claim_id = ANY(%(quarantined_ids)s::bigint[])
  AND claim_id BETWEEN %(low)s AND %(high)s
  AND status = 'pending';

-- 2. Their reason.
INSERT INTO staging.claim_quarantine (claim_id, run_id, reason, quarantined_at)
SELECT q.id, %(run_id)s, q.reason, %(processed_at)s
FROM unnest(%(quarantined_ids)s::bigint[], %(reasons)s::text[]) AS q (id, reason)
