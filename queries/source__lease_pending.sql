-- Lease pending claims to this run in one statement (serialized by source__lease_lock.sql); ON CONFLICT
-- keeps runs disjoint even without that lock:
-- a claim another run leased first is skipped, never shared. LIMIT NULL means no limit.
INSERT INTO staging.claim_leases (claim_id, run_id)
SELECT c.claim_id, %(run_id)s
FROM staging.claims AS c
WHERE c.status = 'pending'
  AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
  AND NOT EXISTS (SELECT 1 FROM staging.claim_leases AS l WHERE l.claim_id = c.claim_id)
ORDER BY c.claim_id
LIMIT %(limit)s
ON CONFLICT (claim_id) DO NOTHING
