-- A chunk's quarantined claims (their claim_id is in the warehouse from another run), in the chunk's
-- marking transaction (stages/load.mark_chunk), only when it has any: status `quarantined`, never
-- leased again, and the reason recorded. Their leases are released by source/mark_claims.sql.

-- 1. Their status.
UPDATE staging.claims
SET status = 'quarantined', run_id = %(run_id)s, processed_at = %(processed_at)s
WHERE claim_id = ANY(%(quarantined_ids)s::bigint[])
  AND claim_id BETWEEN %(low)s AND %(high)s
  AND status = 'pending';

-- 2. Their reason.
INSERT INTO staging.claim_quarantine (claim_id, run_id, reason, quarantined_at)
SELECT id, %(run_id)s, %(reason)s, %(processed_at)s
FROM unnest(%(quarantined_ids)s::bigint[]) AS id
